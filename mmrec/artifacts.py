"""The artifact root and everything that crosses a stage boundary: locations, atomic writes, checked reads, cards.

A location is a URI (a local path or `s3://bucket/key`) resolved to a pyarrow filesystem and a path in it, so
the same code reads and writes a laptop folder, AWS S3 or MinIO. S3 settings come from the usual AWS
environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, and AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL for other endpoints; pyarrow ignores the last two by itself, so they are applied here).

Writes are atomic: a local file is written under a hidden temporary name in the same folder and renamed into
place; an S3 object is uploaded whole from a local temporary file (boto3 aborts a multipart upload that
fails, so no partial object ever appears). A stage killed mid-write leaves the previous artifact, or none.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

import mmrec


class ArtifactError(RuntimeError):
    """An artifact is missing or does not have the expected shape; the message names the file and column."""


@dataclass(frozen=True)
class Location:
    """A file or folder: its URI, the pyarrow filesystem holding it and the path inside that filesystem."""

    uri: str
    fs: pafs.FileSystem
    path: str

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def join(self, *parts: str) -> "Location":
        suffix = "/".join(p.strip("/") for p in parts if p)
        return Location(f"{self.uri.rstrip('/')}/{suffix}", self.fs, f"{self.path.rstrip('/')}/{suffix}")

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound

    def folders(self) -> list[str]:
        """Names of the folders directly inside this one ([] when it does not exist)."""
        if not self.exists():
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True))
        return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory)

    def __str__(self) -> str:
        return self.uri


def resolve(uri: str) -> Location:
    """Resolve a local path or an s3:// URI (the endpoint and credentials come from the AWS environment)."""
    if uri.startswith("s3://"):
        bucket_and_key = uri[len("s3://") :].rstrip("/")
        if not bucket_and_key:
            raise ArtifactError(f"{uri}: an S3 URI needs a bucket, as in s3://bucket/prefix")
        return Location(uri.rstrip("/"), s3_filesystem(), bucket_and_key)
    if "://" in uri:
        raise ArtifactError(f"{uri}: unsupported scheme; use a local path or s3://bucket/prefix")
    path = os.path.abspath(os.path.expanduser(uri))
    return Location(path, pafs.LocalFileSystem(), path)


def s3_endpoint() -> str | None:
    """The S3 endpoint URL from the environment, or None for AWS itself."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_filesystem() -> pafs.S3FileSystem:
    kwargs: dict[str, Any] = {}
    endpoint = s3_endpoint()
    if endpoint:
        parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(**kwargs)


def _s3_client():
    return _cached_s3_client(s3_endpoint(), os.environ.get("AWS_ACCESS_KEY_ID"))


@functools.lru_cache(maxsize=4)
def _cached_s3_client(endpoint: str | None, access_key: str | None):
    import boto3  # only S3 writes need it

    return boto3.client("s3", endpoint_url=endpoint)  # one client per process: creating one costs ~50 ms


# --- atomic writes -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_output(loc: Location) -> Iterator[BinaryIO]:
    """Yield a binary file; its content appears at `loc` only if the block finishes without an exception."""
    if loc.is_s3:
        with tempfile.NamedTemporaryFile(prefix="mmrec-upload-", suffix=f"-{loc.name}") as tmp:
            yield tmp
            tmp.flush()
            bucket, _, key = loc.path.partition("/")
            _s3_client().upload_file(tmp.name, bucket, key)
        return
    folder = os.path.dirname(loc.path)
    os.makedirs(folder, exist_ok=True)
    tmp_path = os.path.join(folder, f".{loc.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp_path, "wb") as tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, loc.path)  # atomic on POSIX: readers see the old file or the new one
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def write_bytes(loc: Location, data: bytes) -> None:
    with atomic_output(loc) as f:
        f.write(data)


def write_text(loc: Location, text: str) -> None:
    write_bytes(loc, text.encode("utf-8"))


def write_json(loc: Location, obj: Any) -> None:
    write_text(loc, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_png(loc: Location, figure) -> str:
    """Save a matplotlib figure as a PNG artifact; returns its URI."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_bytes(loc, buffer.getvalue())
    return loc.uri


def write_table(loc: Location, table: pa.Table, schema: pa.Schema | None = None) -> None:
    """Write a parquet table atomically, cast to `schema` first when one is given."""
    if schema is not None:
        table = conform(table, schema, where=loc.uri)
    with atomic_output(loc) as f:
        pq.write_table(table, f)


# --- checked reads -----------------------------------------------------------------------------------------


def read_bytes(loc: Location) -> bytes:
    try:
        with loc.fs.open_input_stream(loc.path) as f:
            return f.read()
    except FileNotFoundError:
        raise ArtifactError(f"{loc.uri}: not found") from None


def read_json(loc: Location) -> Any:
    data = read_bytes(loc)
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{loc.uri}: not valid JSON ({err})") from None


def read_table(loc: Location, schema: pa.Schema | None = None, columns: list[str] | None = None) -> pa.Table:
    """Read a parquet artifact; with `schema`, check every column is there with a compatible type."""
    if not loc.exists():
        raise ArtifactError(f"{loc.uri}: not found")
    try:
        table = pq.read_table(loc.path, filesystem=loc.fs, columns=columns)
    except (pa.ArrowInvalid, OSError) as err:
        raise ArtifactError(f"{loc.uri}: not a readable parquet file ({err})") from None
    return conform(table, schema, where=loc.uri) if schema is not None else table


def conform(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """Select and cast `table` to `schema`, naming the missing or mistyped column in the error."""
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            raise ArtifactError(
                f"{where}: missing column {field.name!r} (has: {', '.join(table.column_names) or 'none'})"
            )
        column = table.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise ArtifactError(
                    f"{where}: column {field.name!r} has type {column.type}, expected {field.type}"
                ) from None
        if not field.nullable and column.null_count:
            raise ArtifactError(f"{where}: column {field.name!r} has {column.null_count} nulls, expected none")
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def list_files(loc: Location, suffix: str = "") -> list[Location]:
    """Files directly under a folder, sorted by name, hidden and temporary files left out."""
    selector = pafs.FileSelector(loc.path, allow_not_found=True)
    infos = [
        i
        for i in loc.fs.get_file_info(selector)
        if i.type == pafs.FileType.File and not i.base_name.startswith(".") and i.base_name.endswith(suffix)
    ]
    return [loc.join(i.base_name) for i in sorted(infos, key=lambda i: i.base_name)]


def card(**fields: Any) -> dict[str, Any]:
    """A stage's card: its own fields plus the mmrec version and the time it was written."""
    return {
        **fields,
        "mmrec_version": mmrec.__version__,
        "written_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --- table schemas: what each stage promises the next ------------------------------------------------------

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("item_idx", pa.int32(), nullable=False),  # 1..N by descending count, then URI; 0 is padding
        pa.field("track_uri", pa.string(), nullable=False),
        pa.field("track_name", pa.string()),
        pa.field("artist_uri", pa.string()),
        pa.field("artist_name", pa.string()),
        pa.field("album_uri", pa.string()),
        pa.field("album_name", pa.string()),
        pa.field("duration_ms", pa.int64()),
        pa.field("count", pa.int64(), nullable=False),  # plays in the prepared playlists
        pa.field("train_count", pa.int64(), nullable=False),  # plays in training histories only
    ]
)

SPLIT_SCHEMA = pa.schema(
    [
        pa.field("pid", pa.int64(), nullable=False),
        pa.field("history", pa.list_(pa.int32()), nullable=False),  # item_idx in playlist order
        pa.field("target", pa.int32()),  # the held-out item (valid, test); null in train
    ]
)

CHALLENGE_SCHEMA = pa.schema(
    [
        pa.field("pid", pa.int64(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("num_tracks", pa.int32()),
        pa.field("num_samples", pa.int32()),
        pa.field("num_holdouts", pa.int32()),
        pa.field("history", pa.list_(pa.int32()), nullable=False),  # the given songs the model knows
        pa.field("unknown_tracks", pa.list_(pa.string()), nullable=False),  # given songs not in items
    ]
)
