"""`mmrec prepare` on a real local Ray: known answers, an independent recount of the demo corpus, bad input, S3."""

import json
import os
from collections import Counter
from pathlib import Path

import boto3
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from mmrec import artifacts
from mmrec.config import load_config
from mmrec.data import run as prepare
from mmrec.data.mpd import MPDFormatError
from mmrec.demo import run as demo_data
from tests.data.slices import playlist, track, write_slice

pytestmark = pytest.mark.slow


def run_prepare(root: Path, slices: Path | str, **settings):
    overrides = {"artifact_root": str(root), "prepare.input": str(slices), **{f"prepare.{k}": v for k, v in settings.items()}}
    return prepare.run(load_config(overrides=overrides))


def table(path):
    return pq.read_table(path).to_pylist()


def test_known_answers(ray_local, tmp_path):
    slices = tmp_path / "slices"
    # a, b, c, d: 3 plays; e, f: 1. Pid 2 loses e and f and goes, which leaves d with 2 plays: a second pass
    # drops d. The repeated a in pid 0 is dropped first.
    write_slice(slices, 0, 1, [playlist(0, ["a", "b", "c", "d", "a"]), playlist(1, ["b", "a", "c", "d"])])
    write_slice(slices, 2, 3, [playlist(2, ["d", "e", "f"]), playlist(3, ["c", "b", "a"])])
    outputs = run_prepare(tmp_path / "root", slices, min_song_count=3)

    items = table(outputs["items"])
    assert [(i["item_idx"], i["track_uri"], i["count"]) for i in items] == [
        (1, "spotify:track:a", 3), (2, "spotify:track:b", 3), (3, "spotify:track:c", 3),
    ]
    assert items[0]["track_name"] == "Song a" and items[0]["artist_uri"] == "spotify:artist:a0"
    assert [i["train_count"] for i in items] == [1, 1, 1]
    assert table(outputs["test"]) == [
        {"pid": 0, "history": [1, 2], "target": 3},
        {"pid": 1, "history": [2, 1], "target": 3},
        {"pid": 3, "history": [3, 2], "target": 1},
    ]
    assert table(outputs["valid"])[0] == {"pid": 0, "history": [1], "target": 2}
    assert table(outputs["train"])[0] == {"pid": 0, "history": [1], "target": None}

    card = json.loads(Path(outputs["card"]).read_text())
    assert card["read"] == {"playlists": 4, "entries": 14, "songs": 6, "repeats_dropped": 1}
    assert (card["playlists"], card["songs"], card["interactions"]) == (3, 3, 9)
    assert card["sparsity"] == pytest.approx(0.0)
    assert card["dropped"] == {"playlists": 1, "songs": 3}
    assert card["thresholds"] == {"min_song_count": 3, "min_playlist_length": 3} and card["filter_passes"] == 2
    assert len(card["input"]["content_hash"]) == 64 and card["skipped"] == {}


def test_outputs_are_deterministic_and_the_hash_follows_the_input(ray_local, tmp_path):
    slices = tmp_path / "slices"
    write_slice(slices, 0, 2, [playlist(p, ["a", "b", "c", "d"]) for p in range(3)])
    first = run_prepare(tmp_path / "r1", slices, preset="small")
    second = run_prepare(tmp_path / "r2", slices, preset="small")
    for name in ("items", "train", "valid", "test"):
        assert table(first[name]) == table(second[name])
    hashes = [json.loads(Path(o["card"]).read_text())["input"]["content_hash"] for o in (first, second)]
    write_slice(slices, 0, 2, [playlist(p, ["a", "b", "c", "e"]) for p in range(3)])
    third = run_prepare(tmp_path / "r3", slices, preset="small")
    assert hashes[0] == hashes[1] != json.loads(Path(third["card"]).read_text())["input"]["content_hash"]


# --- the demo corpus against an independent plain-Python count -------------------------------------------


def plain_prepare(folder: Path, threshold: int, min_length: int):
    """The same rules, written the obvious way: repeats dropped, then filters until nothing changes."""
    playlists = {}
    entries = 0
    for path in sorted(folder.glob("mpd.slice.*.json")):
        for p in json.loads(Path(path).read_text())["playlists"]:
            uris = [t["track_uri"] for t in sorted(p["tracks"], key=lambda t: t["pos"])]
            entries += len(dict.fromkeys(uris))
            playlists[p["pid"]] = list(dict.fromkeys(uris))
    read = (len(playlists), entries, len({u for s in playlists.values() for u in s}))
    while True:
        counts = Counter(u for s in playlists.values() for u in s)
        kept = {pid: [u for u in s if counts[u] >= threshold] for pid, s in playlists.items()}
        kept = {pid: s for pid, s in kept.items() if len(s) >= min_length}
        if kept == playlists:
            break
        playlists = kept
    counts = Counter(u for s in playlists.values() for u in s)
    ids = {u: i for i, u in enumerate(sorted(counts, key=lambda u: (-counts[u], u)), start=1)}
    return read, playlists, counts, ids


def test_demo_corpus_matches_an_independent_count(ray_local, tmp_path):
    config = load_config(overrides={
        "artifact_root": str(tmp_path), "demo_data.playlists": 1500, "demo_data.songs": 12000,
        "demo_data.slice_size": 500, "prepare.min_song_count": 4,
    })
    demo_data.run(config)
    outputs = prepare.run(config)
    read, playlists, counts, ids = plain_prepare(tmp_path / "demo-corpus" / "data", 4, 3)

    card = json.loads(Path(outputs["card"]).read_text())
    assert (card["read"]["playlists"], card["read"]["entries"], card["read"]["songs"]) == read
    assert card["playlists"] == len(playlists) and card["songs"] == len(ids)
    assert card["interactions"] == sum(map(len, playlists.values()))
    items = table(outputs["items"])
    assert [(i["track_uri"], i["item_idx"], i["count"]) for i in items] == sorted(
        ((u, ids[u], counts[u]) for u in ids), key=lambda r: r[1]
    )
    test = {r["pid"]: r for r in table(outputs["test"])}
    valid = {r["pid"]: r for r in table(outputs["valid"])}
    assert set(test) == set(playlists)
    for pid, songs in playlists.items():
        sequence = [ids[u] for u in songs]
        assert test[pid]["history"] + [test[pid]["target"]] == sequence
        assert valid[pid]["target"] == sequence[-2] and valid[pid]["history"] == sequence[:-2]


# --- bad input ---------------------------------------------------------------------------------------------


def bad_folder(folder: Path) -> Path:
    write_slice(folder, 0, 2, [playlist(0, ["a", "b", "c"]), playlist(1, ["a", "b", "c"]), playlist(2, ["a", "b", "c"])])
    no_pid = playlist(3, ["a", "b", "c"])
    del no_pid["pid"]
    null_uri = playlist(4, ["a", "b", "c", "d"])
    null_uri["tracks"][3]["track_uri"] = None
    write_slice(folder, 3, 5, [no_pid, null_uri, playlist(2, ["b", "c", "a"])])  # pid 2 again
    (folder / "mpd.slice.6-6.json").write_text('{"info": {}, "playlists": [{"pid": 6, "tra')
    (folder / "mpd.slice.7-7.json").write_text("")
    (folder / "mpd.slice.8-8.json").write_text(json.dumps({"info": {}}))
    return folder


def test_skip_mode_skips_and_counts_every_bad_record(ray_local, tmp_path):
    folder = bad_folder(tmp_path / "slices")
    (folder / "notes.txt").write_text("not a slice")
    outputs = run_prepare(tmp_path / "root", folder, preset="small", on_bad_record="skip")
    card = json.loads(Path(outputs["card"]).read_text())
    assert card["skipped"] == {
        "duplicate_pid": 1, "empty_file": 1, "malformed_json": 1, "no_playlists": 1, "not_a_slice": 1,
        "playlist_missing_pid": 1, "track_bad_track_uri": 1,
    }
    assert sorted(r["pid"] for r in table(outputs["test"])) == [0, 1, 2, 4]
    assert table(outputs["test"])[-1] == {"pid": 4, "history": [1, 2], "target": 3}  # the null-uri track went


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda f: (f / "mpd.slice.6-6.json").write_text('{"playlists": [{"pid": 6, "tra'), ["mpd.slice.6-6.json", "malformed JSON"]),
        (lambda f: write_slice(f, 3, 3, [playlist(1, ["a", "b", "c"])]), ["pid 1 appears in mpd.slice.0-2.json and mpd.slice.3-3.json"]),
        (lambda f: (f / "notes.txt").write_text("x"), ["notes.txt: not an MPD slice"]),
    ],
)
def test_raise_mode_names_the_problem_and_writes_nothing(ray_local, tmp_path, make, words):
    folder = tmp_path / "slices"
    write_slice(folder, 0, 2, [playlist(p, ["a", "b", "c"]) for p in range(3)])
    make(folder)
    with pytest.raises(MPDFormatError) as err:
        run_prepare(tmp_path / "root", folder, preset="small")
    assert all(w in str(err.value) for w in words), str(err.value)
    data = tmp_path / "root" / "data"
    assert not data.exists() or [p for p in os.listdir(data) if not p.startswith(".")] == []


def test_an_empty_s3_prefix_is_a_clear_error(s3_bucket, tmp_path):
    with pytest.raises(MPDFormatError, match=f"s3://{s3_bucket}/nothing-here: no MPD slices found"):
        run_prepare(tmp_path, f"s3://{s3_bucket}/nothing-here")


# --- S3 and the challenge set ------------------------------------------------------------------------------


def test_slices_and_artifacts_on_s3_with_a_challenge_set(ray_local, s3_bucket, tmp_path):
    local = tmp_path / "slices"
    write_slice(local, 0, 1, [playlist(0, ["a", "b", "c", "d"]), playlist(1, ["d", "c", "b", "a"])])
    challenge = {"date": "2018-01-16", "version": "v1", "playlists": [
        {"pid": 1000, "name": "mix", "num_tracks": 10, "num_samples": 2, "num_holdouts": 8,
         "tracks": [track("a", 0), track("zzz", 1)]},
    ]}
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])
    s3.upload_file(str(local / "mpd.slice.0-1.json"), s3_bucket, "mpd/data/mpd.slice.0-1.json")
    s3.put_object(Bucket=s3_bucket, Key="mpd/challenge_set.json", Body=json.dumps(challenge).encode())

    config = load_config(overrides={
        "artifact_root": f"s3://{s3_bucket}/run", "prepare.input": f"s3://{s3_bucket}/mpd",
        "prepare.preset": "small", "prepare.challenge_set": f"s3://{s3_bucket}/mpd/challenge_set.json",
    })
    outputs = prepare.run(config)
    assert outputs["items"] == f"s3://{s3_bucket}/run/data/items.parquet"
    items = artifacts.read_table(artifacts.resolve(outputs["items"]), artifacts.ITEMS_SCHEMA)
    assert items.num_rows == 4
    a = items.filter(pc.equal(items["track_uri"], "spotify:track:a"))["item_idx"][0].as_py()
    rows = artifacts.read_table(artifacts.resolve(outputs["challenge"]), artifacts.CHALLENGE_SCHEMA).to_pylist()
    assert rows == [{"pid": 1000, "name": "mix", "num_tracks": 10, "num_samples": 2, "num_holdouts": 8,
                     "history": [a], "unknown_tracks": ["spotify:track:zzz"]}]
    card = artifacts.read_json(artifacts.resolve(outputs["card"]))
    assert card["challenge_set"]["unknown_given_tracks"] == 1 and card["input"]["folder"].endswith("mpd/data")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="run/data/")["Contents"]]
    assert not [k for k in keys if ".staging" in k]  # staging is cleaned up
