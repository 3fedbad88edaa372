"""Shared fixtures: a real local Ray per test module, and a real S3 endpoint (moto's server on 127.0.0.1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Tests decide Ray's auth mode explicitly: local test clusters run without tokens (the multi-node cluster test
# turns tokens on itself). No model or data is ever fetched from a hub.
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
S3_BUCKET = "mmrec-test"


def build_corpus(root: Path, overrides: dict) -> dict:
    """Generate, prepare and embed a small demo corpus under `root` (the slow modules' shared start); returns
    embed's outputs."""
    from mmrec.config import load_config
    from mmrec.data import run as prepare
    from mmrec.demo import run as demo_data
    from mmrec.embed import run as embed

    config = load_config(overrides={**overrides, "artifact_root": str(root)})
    demo_data.run(config)
    prepare.run(config)
    return embed.run(config)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_bucket():
    """moto's S3 server on 127.0.0.1, the AWS environment pointed at it, and an empty bucket; yields the bucket."""
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import boto3

        deadline = time.time() + 30
        while True:
            try:
                boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket=S3_BUCKET)
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start on 127.0.0.1") from None
                time.sleep(0.3)
        yield S3_BUCKET
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def ray_local(s3_bucket):
    """One real local Ray per test module (started after the S3 environment so workers inherit it)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
