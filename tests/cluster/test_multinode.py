"""The pipeline as a Ray job on a real two-node cluster with token authentication, everything on S3.

`ray start --head` and a second `ray start` node (its own CPUs, custom resource and temp dir) form one cluster on
this machine; `ray job submit --working-dir . -- python jobs/pipeline.py --config configs/demo.yaml` runs the
whole chain (demo corpus -> prepare -> embed -> train with one DDP worker per node -> evaluate -> tune -> serve
deploy) with the input slices, the modality sources and the artifact root all on moto's S3 server on 127.0.0.1.
The test then checks the artifacts in the bucket, that the endpoint outlived the job, that the dashboard refuses
a client without the token, and stops the processes of the cluster it started (and only those).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 900
# configs/demo.yaml made small enough for a test: a 600-playlist corpus, tiny models, 2 epochs, a 2-trial sweep.
SMALL = {
    "demo_data.playlists": 600, "demo_data.songs": 1500, "demo_data.challenge_playlists": 0,
    "prepare.min_song_count": 5,
    "embed.audio_epochs": 3, "embed.art_epochs": 1, "embed.art_width": 4, "embed.art_train_sample": 100,
    "embed.dim": 8, "embed.max_text_words": 8,
    "train.hidden": 16, "train.epochs": 2, "train.patience": 2, "train.batch_size": 64,
    "tune.num_samples": 2, "tune.trial_epochs": 1,
    "pipeline.stages": "[demo-data, prepare, embed, train, evaluate, tune, serve]", "pipeline.serve": "deploy",
}


def cluster_processes(gcs_port: int, *temp_dirs: str) -> list[psutil.Process]:
    """Every process of the cluster whose GCS listens on this port and whose nodes use these temp dirs: the
    daemons that name either on their command line, and everything they started (raylets' workers, agents)."""
    address = re.compile(rf"address=\S+:{gcs_port}(\s|$)")
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(d in cmdline for d in temp_dirs) or address.search(cmdline):
            found[proc.pid] = proc
            try:
                found.update({c.pid: c for c in proc.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
    found.pop(os.getpid(), None)
    return list(found.values())


def stop_cluster(gcs_port: int, *temp_dirs: str) -> None:
    """What `ray stop` does, for this cluster only (`ray stop` would stop every Ray on the machine)."""
    procs = cluster_processes(gcs_port, *temp_dirs)
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    # Killed processes take a moment to go; a zombie runs nothing (its parent, a daemon killed above, cannot reap
    # it, and a container's PID 1 may never do so), so only live processes count as left behind.
    deadline = time.time() + 20
    while (left := running(cluster_processes(gcs_port, *temp_dirs))) and time.time() < deadline:
        time.sleep(0.5)
    assert not left, f"the test cluster left processes behind: {left}"


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes that still run (neither gone nor zombies)."""
    live = []
    for proc in procs:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
        except psutil.NoSuchProcess:
            pass
    return live


@pytest.fixture(scope="module")
def cluster(s3_bucket):
    """A head and a second node on 127.0.0.1 with token auth; yields (dashboard URL, env with the token)."""
    bin_dir = str(Path(sys.executable).parent)
    base = tempfile.mkdtemp(prefix="mmrec-mn-", dir="/tmp")  # short: Ray's socket paths have a length limit
    token_file = Path(base, "auth_token")
    token_file.write_text(secrets.token_hex(32))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN_PATH": str(token_file), "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    env.pop("RAY_ADDRESS", None)
    head_dir, node_dir = f"{base}/head", f"{base}/node"
    gcs, dashboard = free_port(), free_port()
    ray = shutil.which("ray", path=bin_dir)
    try:
        # The agent that takes job submissions on a free port too: Ray's fixed default (52365) is held by any other
        # Ray on this machine, one cause of "No available agent" (this test still wants the machine to itself).
        subprocess.run([ray, "start", "--head", f"--port={gcs}", f"--ray-client-server-port={free_port()}",
                        "--num-cpus=1", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                        f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={free_port()}",
                        f"--temp-dir={head_dir}", "--disable-usage-stats"],
                       env=env, check=True, timeout=120, capture_output=True)
        subprocess.run([ray, "start", f"--address=127.0.0.1:{gcs}", "--num-cpus=1",
                        '--resources={"second_node": 1}', f"--dashboard-agent-listen-port={free_port()}",
                        f"--temp-dir={node_dir}", "--disable-usage-stats"],
                       env=env, check=True, timeout=120, capture_output=True)
        yield f"http://127.0.0.1:{dashboard}", env, node_dir
    finally:
        stop_cluster(gcs, head_dir, node_dir)
        shutil.rmtree(base, ignore_errors=True)


def authorised(env: dict) -> dict:
    return {"Authorization": f"Bearer {Path(env['RAY_AUTH_TOKEN_PATH']).read_text().strip()}"}


def wait_for_job(dashboard: str, env: dict, job_id: str) -> dict:
    deadline = time.time() + JOB_TIMEOUT_S
    while time.time() < deadline:
        info = requests.get(f"{dashboard}/api/jobs/{job_id}", headers=authorised(env), timeout=10).json()
        if info["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            return info
        time.sleep(5)
    subprocess.run(["ray", "job", "stop", "--address", dashboard, job_id], env=env, timeout=60)
    pytest.fail(f"job {job_id} did not finish in {JOB_TIMEOUT_S} s")


def submit_job(dashboard: str, env: dict, job_id: str, entrypoint: list[str]) -> subprocess.CompletedProcess:
    """`ray job submit --no-wait`, retried while the head's job agent is still starting: it comes up after `ray
    start` returns, on a loaded machine up to a minute later, and until then the dashboard answers 500 "No
    available agent to submit job" (nothing is created, so the same submission id can be sent again)."""
    deadline = time.time() + 180
    while True:
        submit = subprocess.run(["ray", "job", "submit", "--address", dashboard, "--submission-id", job_id,
                                 "--working-dir", ".", "--no-wait", "--", *entrypoint],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        if submit.returncode == 0 or "No available agent" not in submit.stderr or time.time() > deadline:
            return submit
        time.sleep(5)


def test_the_pipeline_job_on_two_nodes_with_token_auth_and_s3(cluster, s3_bucket):
    import boto3

    dashboard, env, node_dir = cluster
    nodes = requests.get(f"{dashboard}/nodes?view=summary", headers=authorised(env), timeout=10).json()
    alive = [n for n in nodes["data"]["summary"] if n["raylet"]["state"] == "ALIVE"]
    assert len(alive) == 2, alive
    # Token auth is on: a client without the token is refused.
    assert requests.get(f"{dashboard}/api/jobs/", timeout=10).status_code == 401
    no_token = {**env, "RAY_AUTH_MODE": "disabled"}
    refused = subprocess.run(["ray", "job", "list", "--address", dashboard], env=no_token, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode != 0

    root = f"s3://{s3_bucket}/multinode"
    serve_port = free_port()
    job_id = f"mmrec-pipeline-{secrets.token_hex(4)}"
    overrides = [f"--{k}={v}" for k, v in {**SMALL, "serve.port": serve_port}.items()]
    submit = submit_job(dashboard, env, job_id, ["python", "jobs/pipeline.py", "--config", "configs/demo.yaml",
                                                 "--artifact-root", root, *overrides])
    assert submit.returncode == 0, submit.stderr[-3000:]
    info = wait_for_job(dashboard, env, job_id)
    logs = requests.get(f"{dashboard}/api/jobs/{job_id}/logs", headers=authorised(env), timeout=30).json()["logs"]
    assert info["status"] == "SUCCEEDED", logs[-5000:]
    assert "mmrec pipeline summary" in logs

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])

    def read_json(key: str) -> dict:
        return json.loads(s3.get_object(Bucket=s3_bucket, Key=f"multinode/{key}")["Body"].read())

    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="multinode/")
            for o in page.get("Contents", [])}
    assert any(k.startswith("multinode/demo-corpus/data/mpd.slice.") for k in keys)  # input slices on S3
    assert "multinode/demo-corpus/lyrics.jsonl" in keys  # modality sources on S3
    data_card = read_json("data/card.json")
    assert data_card["playlists"] > 400 and data_card["input"]["uri"].startswith("s3://")
    assert set(read_json("embeddings/card.json")["modalities"]) == {"audio", "lyrics", "album_art", "artist_bio"}
    exchange = read_json("reports/serve/demo_request.json")
    model = exchange["answer"]["model"]
    evaluation = read_json(f"models/{model}/evaluation.json")
    assert evaluation["test"]["playlists"] > 400 and evaluation["test"]["metrics"]["recall@500"] > 0
    assert read_json("models/tune-demo/card.json")["lineage"]["trials"] == 2

    # Train ran one DDP worker per node: the second node's worker logs hold a Train worker.
    worker_logs = list(Path(node_dir, "session_latest", "logs").glob("worker-*"))
    assert any("RayTrainWorker" in p.read_text(errors="replace")[:4000] for p in worker_logs)

    # The endpoint outlived the job (serve deploy) and answers.
    answer = requests.post(f"http://127.0.0.1:{serve_port}/recommend", timeout=30,
                           json={"tracks": exchange["request"]["tracks"][-5:], "k": 3})
    assert answer.status_code == 200 and len(answer.json()["recommendations"]) == 3
