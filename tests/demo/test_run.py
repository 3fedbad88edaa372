"""`mmrec demo-data` end to end on a real local Ray: local and S3 outputs, idempotence, the job entrypoint."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pytest
from PIL import Image

from mmrec import artifacts
from mmrec.config import load_config
from mmrec.demo import run as demo_data
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SMALL = {"demo_data.playlists": 1200, "demo_data.songs": 8000, "demo_data.slice_size": 500}


@pytest.fixture(scope="module")
def corpus(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    config = load_config(overrides={**SMALL, "artifact_root": str(root)})
    outputs = demo_data.run(config)
    return config, outputs, root / "demo-corpus"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_writes_every_source_and_a_consistent_manifest(corpus):
    config, outputs, folder = corpus
    assert sorted(os.listdir(folder / "data")) == [
        "mpd.slice.0-499.json", "mpd.slice.1000-1199.json", "mpd.slice.500-999.json"
    ]
    manifest = json.loads(Path(folder / "manifest.json").read_text())
    playlists = [p for f in sorted((folder / "data").iterdir()) for p in json.loads(Path(f).read_text())["playlists"]]
    uris = {t["track_uri"] for p in playlists for t in p["tracks"]}
    assert manifest["playlists"] == len(playlists) == 1200
    assert manifest["entries"] == sum(p["num_tracks"] for p in playlists)
    assert manifest["songs"] == len(uris)

    challenge = json.loads(Path(folder / "challenge_set.json").read_text())
    challenge_uris = {t["track_uri"] for p in challenge["playlists"] for t in p["tracks"]}
    holdouts = {h["pid"]: h["track_uris"] for h in read_jsonl(folder / "hidden" / "challenge_holdouts.jsonl")}
    challenge_uris |= {u for h in holdouts.values() for u in h}
    uris_with_challenge = uris | challenge_uris

    audio_csv = pacsv.read_csv(folder / "audio_features.csv")
    audio_jsonl = read_jsonl(folder / "audio_features.jsonl")
    assert set(audio_csv.column("uri").to_pylist()) == uris_with_challenge == {r["uri"] for r in audio_jsonl}
    assert audio_csv.num_rows == len(audio_jsonl)

    lyrics = read_jsonl(folder / "lyrics.jsonl")
    assert {r["track_uri"] for r in lyrics} <= uris_with_challenge
    covered = len(lyrics) / len(uris_with_challenge)
    assert abs(covered - 0.90) < 0.03 and manifest["coverage"]["lyrics"] == pytest.approx(covered, abs=1e-4)
    artists = {t["artist_uri"] for p in playlists for t in p["tracks"]} | {
        t["artist_uri"] for p in challenge["playlists"] for t in p["tracks"]
    }
    bios = read_jsonl(folder / "artist_bios.jsonl")
    assert abs(len(bios) / len(artists) - 0.93) < 0.04

    albums = {t["album_uri"] for p in playlists for t in p["tracks"]}
    index = read_jsonl(folder / "album_art" / "index.jsonl")
    assert len({r["album_uri"] for r in index} & albums) / len(albums) == pytest.approx(0.92, abs=0.03)
    readable = 0
    for record in index:
        data = (folder / "album_art" / record["path"]).read_bytes()
        try:
            Image.open(io.BytesIO(data)).load()
            readable += 1
        except OSError:
            pass
    assert 0.9 < readable / len(index) < 1.0  # a few corrupt or empty files, as in scraped sources
    assert {p.rsplit(".", 1)[1] for p in (r["path"] for r in index)} == {"jpg", "png"}

    hidden = pacsv.read_csv(folder / "hidden" / "song_genres.csv")
    assert set(hidden.column("track_uri").to_pylist()) == uris_with_challenge
    assert outputs["manifest"] == str(folder / "manifest.json")


def test_a_second_run_with_the_same_settings_is_skipped(corpus):
    config, _, folder = corpus
    before = os.stat(folder / "manifest.json").st_mtime_ns
    demo_data.run(config)
    assert os.stat(folder / "manifest.json").st_mtime_ns == before


def test_new_settings_regenerate_and_drop_stale_slices(ray_local, tmp_path):
    config = load_config(overrides={**SMALL, "artifact_root": str(tmp_path)})
    demo_data.run(config)
    smaller = load_config(overrides={**SMALL, "demo_data.playlists": 600, "artifact_root": str(tmp_path)})
    demo_data.run(smaller)
    assert sorted(os.listdir(tmp_path / "demo-corpus" / "data")) == ["mpd.slice.0-499.json", "mpd.slice.500-599.json"]
    assert json.loads(Path(tmp_path / "demo-corpus" / "manifest.json").read_text())["playlists"] == 600


def test_writes_to_s3(ray_local, s3_bucket):
    config = load_config(overrides={**SMALL, "demo_data.playlists": 300, "artifact_root": f"s3://{s3_bucket}/demo"})
    outputs = demo_data.run(config)
    assert outputs["corpus"] == f"s3://{s3_bucket}/demo/demo-corpus"
    corpus = artifacts.resolve(outputs["corpus"])
    assert [f.name for f in artifacts.list_files(corpus.join("data"))] == ["mpd.slice.0-299.json"]
    slice_ = json.loads(artifacts.read_bytes(corpus.join("data", "mpd.slice.0-299.json")))
    assert len(slice_["playlists"]) == 300
    assert artifacts.read_json(corpus.join("manifest.json"))["playlists"] == 300
    assert len(artifacts.list_files(corpus.join("album_art", "images"))) > 10


def test_job_entrypoint_runs_the_same_stage_on_the_running_cluster(ray_local, tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    args = [f"--{k}={v}" for k, v in {**SMALL, "demo_data.playlists": 200}.items()]
    result = subprocess.run(
        [sys.executable, "jobs/demo_data.py", "--config", "configs/demo.yaml", "--artifact-root", str(tmp_path), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = json.loads(result.stdout[result.stdout.index("{"):])
    assert json.loads(Path(outputs["manifest"]).read_text())["playlists"] == 200


def test_challenge_set_follows_the_challenge_format(corpus):
    _, outputs, folder = corpus
    challenge = json.loads(Path(outputs["challenge_set"]).read_text())
    assert set(challenge) == {"date", "version", "playlists"}
    playlists = challenge["playlists"]
    assert len(playlists) == 1000 and [p["pid"] for p in playlists] == list(range(1200, 2200))
    holdouts = {h["pid"]: h["track_uris"] for h in read_jsonl(folder / "hidden" / "challenge_holdouts.jsonl")}
    categories = set()
    for p in playlists:
        assert p["num_samples"] == len(p["tracks"]) and p["num_holdouts"] == len(holdouts[p["pid"]]) >= 1
        assert p["num_tracks"] == p["num_samples"] + p["num_holdouts"]
        first = [t["pos"] for t in p["tracks"]] == list(range(p["num_samples"]))
        categories.add((p["num_samples"], "name" in p, first))
    # the ten categories: 0, 1, 5, 10, 25, 100 given songs, with and without titles, first or random
    assert {(0, True, True), (1, True, True), (5, False, True), (25, True, False), (100, True, False)} <= categories
