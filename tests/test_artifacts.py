import os
import signal
import subprocess
import sys

import pyarrow as pa
import pytest

from mmrec import artifacts
from mmrec.artifacts import ArtifactError

SCHEMA = pa.schema([("item_idx", pa.int32(), False), ("track_uri", pa.string())])


def small_table(n: int = 3) -> pa.Table:
    return pa.table({"item_idx": list(range(1, n + 1)), "track_uri": [f"spotify:track:{i}" for i in range(n)]})


def roundtrip(root: artifacts.Location) -> None:
    loc = root.join("data", "items.parquet")
    artifacts.write_table(loc, small_table(), SCHEMA)
    table = artifacts.read_table(loc, SCHEMA)
    assert table.schema == SCHEMA and table.column("item_idx").to_pylist() == [1, 2, 3]
    artifacts.write_json(root.join("data", "card.json"), artifacts.card(songs=3))
    card = artifacts.read_json(root.join("data", "card.json"))
    assert card["songs"] == 3 and card["mmrec_version"]
    assert [f.name for f in artifacts.list_files(root.join("data"))] == ["card.json", "items.parquet"]


def test_local_roundtrip(tmp_path):
    roundtrip(artifacts.resolve(str(tmp_path / "root")))


def test_s3_roundtrip_on_a_real_endpoint(s3_bucket):
    root = artifacts.resolve(f"s3://{s3_bucket}/roundtrip")
    assert root.is_s3
    roundtrip(root)


def test_a_failed_write_leaves_the_old_artifact_and_no_debris(tmp_path):
    loc = artifacts.resolve(str(tmp_path / "a" / "items.parquet"))
    artifacts.write_table(loc, small_table(3), SCHEMA)
    with pytest.raises(RuntimeError, match="crash"):
        with artifacts.atomic_output(loc) as f:
            f.write(b"PAR1 half a table")
            raise RuntimeError("crash mid-write")
    assert artifacts.read_table(loc, SCHEMA).num_rows == 3
    assert os.listdir(tmp_path / "a") == ["items.parquet"]


def test_a_failed_s3_write_leaves_the_old_object(s3_bucket):
    loc = artifacts.resolve(f"s3://{s3_bucket}/atomic/items.parquet")
    artifacts.write_table(loc, small_table(3), SCHEMA)
    with pytest.raises(RuntimeError):
        with artifacts.atomic_output(loc) as f:
            f.write(b"half")
            raise RuntimeError("crash mid-write")
    assert artifacts.read_table(loc, SCHEMA).num_rows == 3


def test_a_killed_writer_leaves_the_old_artifact(tmp_path):
    """A real process is SIGKILLed while writing; the reader still sees the complete old table."""
    loc = artifacts.resolve(str(tmp_path / "items.parquet"))
    artifacts.write_table(loc, small_table(3), SCHEMA)
    writer = (
        "import sys, time\n"
        "from mmrec import artifacts\n"
        "with artifacts.atomic_output(artifacts.resolve(sys.argv[1])) as f:\n"
        "    f.write(b'PAR1' * 1000); f.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, loc.path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert artifacts.read_table(loc, SCHEMA).num_rows == 3
    # the killed writer's temporary file is hidden from listings, so no stage ever reads it
    assert [f.name for f in artifacts.list_files(artifacts.resolve(str(tmp_path)))] == ["items.parquet"]


def test_reads_name_the_file_and_the_column(tmp_path):
    loc = artifacts.resolve(str(tmp_path / "items.parquet"))
    with pytest.raises(ArtifactError, match=r"items\.parquet: not found"):
        artifacts.read_table(loc, SCHEMA)
    artifacts.write_table(loc, pa.table({"item_idx": [1, 2]}))
    with pytest.raises(ArtifactError, match=r"items\.parquet: missing column 'track_uri' \(has: item_idx\)"):
        artifacts.read_table(loc, SCHEMA)
    artifacts.write_table(loc, pa.table({"item_idx": ["a", "b"], "track_uri": ["x", "y"]}))
    with pytest.raises(ArtifactError, match="column 'item_idx' has type string, expected int32"):
        artifacts.read_table(loc, SCHEMA)
    artifacts.write_table(loc, pa.table({"item_idx": pa.array([1, None], pa.int64()), "track_uri": ["x", "y"]}))
    with pytest.raises(ArtifactError, match="column 'item_idx' has 1 nulls"):
        artifacts.read_table(loc, SCHEMA)
    artifacts.write_bytes(artifacts.resolve(str(tmp_path / "bad.parquet")), b"not parquet")
    with pytest.raises(ArtifactError, match="bad.parquet: not a readable parquet file"):
        artifacts.read_table(artifacts.resolve(str(tmp_path / "bad.parquet")))


def test_uris_are_checked():
    with pytest.raises(ArtifactError, match="unsupported scheme"):
        artifacts.resolve("gs://bucket/x")
    with pytest.raises(ArtifactError, match="needs a bucket"):
        artifacts.resolve("s3://")
