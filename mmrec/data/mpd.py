"""Reading the Spotify Million Playlist Dataset's formats: slice files, the challenge set, submissions.

Pure functions on bytes and tables, no Ray. A slice becomes two tables:

* playlists: one row per playlist, its songs as a list of 64-bit URI hashes in `pos` order, so a playlist
  never straddles two blocks of a distributed dataset and later passes work on integers, not strings;
* songs: one row per distinct song of the slice with its URIs, names and duration (first occurrence).

Every problem in the input is recorded on the playlist row it affects, as a reason code (counted in the
dataset card) and a message naming the file, the pid and the field; the caller decides to raise or to skip.
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa

if TYPE_CHECKING:
    from mmrec.artifacts import Location

SLICE_NAME = re.compile(r"^mpd\.slice\.(\d+)-(\d+)\.json$")
TRACK_FIELDS = ("track_uri", "artist_uri", "album_uri", "track_name", "artist_name", "album_name")

PLAYLIST_ROWS = pa.schema(
    [
        ("file", pa.string()),
        ("pid", pa.int64()),
        ("valid", pa.bool_()),  # false: the row only carries the problems of a skipped file or playlist
        ("songs", pa.list_(pa.int64())),  # uri_hash of each track, in pos order
        ("repeats_dropped", pa.int32()),
        ("problem_reasons", pa.list_(pa.string())),
        ("problem_messages", pa.list_(pa.string())),
        ("file_digest", pa.string()),  # sha256 of the file, on the file's first row only
    ]
)
SONG_ROWS = pa.schema(
    [("song", pa.int64()), *[(f, pa.string()) for f in TRACK_FIELDS], ("duration_ms", pa.int64()), ("pid", pa.int64())]
)


_TRACK_GETTER = operator.itemgetter(*TRACK_FIELDS, "duration_ms")
_URI_GETTER = operator.itemgetter("track_uri")
_POS_GETTER = operator.itemgetter("pos")


class MPDFormatError(ValueError):
    """Input that is not in the MPD format; the message names the file, the pid and the field."""


class SubmissionError(ValueError):
    """Recommendations that the RecSys Challenge 2018 validator would reject; the message names the pid."""


def is_slice_name(name: str) -> bool:
    return SLICE_NAME.match(name) is not None


def uri_hashes(uris: list[str]) -> np.ndarray:
    """Stable 64-bit hashes of URIs, vectorised (FNV-1a over code points, then a splitmix64 finaliser).

    The same in every process and batch, unlike Python's hash(). Collisions among the MPD's 2.26M songs have a
    chance of about 1e-7; prepare checks the kept songs for them.
    """
    if not uris:
        return np.zeros(0, dtype=np.int64)
    codes = np.array(uris, dtype=np.str_)
    points = codes.view(np.uint32).reshape(len(uris), -1).astype(np.uint64)  # (n, max length), zero padded
    lengths = np.char.str_len(codes)
    h = np.full(len(uris), 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(points.shape[1]):
            mixed = (h ^ points[:, column]) * np.uint64(0x100000001B3)
            h = np.where(column < lengths, mixed, h)  # padding must not change the hash
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h.view(np.int64)


@dataclass(frozen=True)
class ParsedSlice:
    playlists: pa.Table  # PLAYLIST_ROWS
    songs: pa.Table  # SONG_ROWS


def parse_slice(data: bytes, file: str, repeats: str = "drop") -> ParsedSlice:
    """One slice file's bytes -> its playlist rows and distinct songs; problems recorded, never raised."""
    rows = _Rows(file, hashlib.sha256(data).hexdigest())
    if not data.strip():
        return rows.file_problem("empty_file", f"{file}: empty file")
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        return rows.file_problem("malformed_json", f"{file}: truncated or malformed JSON ({err})")
    playlists = document.get("playlists") if isinstance(document, dict) else None
    if not isinstance(playlists, list):
        what = "missing" if not isinstance(document, dict) or "playlists" not in document else "not a list:"
        return rows.file_problem("no_playlists", f'{file}: {what} "playlists"')
    for index, playlist in enumerate(playlists):
        rows.add_playlist(index, playlist, repeats)
    if not rows.pids:
        return rows.file_problem("no_playlists", f'{file}: "playlists" is empty')
    return rows.parsed()


class _Rows:
    """Column buffers for one slice: playlist rows, and the first occurrence of each distinct song."""

    def __init__(self, file: str, digest: str):
        self.file, self.digest = file, digest
        self.pids: list[int | None] = []
        self.valid: list[bool] = []
        self.offsets: list[int] = [0]
        self.uris: list[str] = []
        self.tracks: list[dict] = []
        self.entry_pids: list[int] = []
        self.repeats_dropped: list[int] = []
        self.problems: list[list[tuple[str, str]]] = []

    def parsed(self) -> ParsedSlice:
        n = len(self.pids)
        hashes = uri_hashes(self.uris)
        _, first = np.unique(hashes, return_index=True)  # each distinct song's first entry
        tracks = [self.tracks[i] for i in first]
        playlists = pa.table(
            {
                "file": pa.array([self.file] * n, pa.string()),
                "pid": pa.array(self.pids, pa.int64()),
                "valid": pa.array(self.valid, pa.bool_()),
                "songs": pa.ListArray.from_arrays(pa.array(self.offsets, pa.int32()), pa.array(hashes, pa.int64())),
                "repeats_dropped": pa.array(self.repeats_dropped, pa.int32()),
                "problem_reasons": pa.array([[r for r, _ in p] for p in self.problems], pa.list_(pa.string())),
                "problem_messages": pa.array([[m for _, m in p] for p in self.problems], pa.list_(pa.string())),
                "file_digest": pa.array([self.digest] + [None] * (n - 1), pa.string()),
            },
            schema=PLAYLIST_ROWS,
        )
        try:  # the MPD always has every field: a C-level fast path
            fields = list(zip(*map(_TRACK_GETTER, tracks))) or [()] * (len(TRACK_FIELDS) + 1)
        except KeyError:
            fields = [[t.get(f) for t in tracks] for f in (*TRACK_FIELDS, "duration_ms")]
        durations = fields[-1]
        if set(map(type, durations)) - {int}:
            durations = [d if type(d) is int else None for d in durations]
        songs = {
            "song": pa.array(hashes[first], pa.int64()),
            **{f: _strings(values) for f, values in zip(TRACK_FIELDS, fields)},
            "duration_ms": pa.array(durations, pa.int64()),
            "pid": pa.array(np.asarray(self.entry_pids, dtype=np.int64)[first], pa.int64()),
        }
        return ParsedSlice(playlists, pa.table(songs, schema=SONG_ROWS))

    def file_problem(self, reason: str, message: str) -> ParsedSlice:
        self.__init__(self.file, self.digest)
        self._append(None, False, [], [], 0, [(reason, message)])
        return self.parsed()

    def _append(self, pid, valid: bool, uris: list[str], tracks: list[dict], repeats_dropped: int, problems) -> None:
        self.pids.append(pid)
        self.valid.append(valid)
        self.uris.extend(uris)
        self.offsets.append(len(self.uris))
        self.tracks.extend(tracks)
        self.repeats_dropped.append(repeats_dropped)
        self.problems.append(problems)
        self.entry_pids.extend([pid] * len(uris))

    def add_playlist(self, index: int, playlist: Any, repeats: str) -> None:
        where = f"{self.file}: playlist #{index}"
        if not isinstance(playlist, dict):
            self._append(None, False, [], [], 0, [("bad_playlist", f"{where}: not an object")])
            return
        if "pid" not in playlist:
            self._append(None, False, [], [], 0, [("playlist_missing_pid", f'{where}: missing "pid"')])
            return
        pid = playlist["pid"]
        if type(pid) is not int:
            problem = ("playlist_bad_pid", f'{where}: "pid" must be an integer, got {_show(pid)}')
            self._append(None, False, [], [], 0, [problem])
            return
        where = f"{self.file}: playlist {pid}"
        tracks = playlist.get("tracks")
        if not isinstance(tracks, list):
            reason = "playlist_missing_tracks" if "tracks" not in playlist else "playlist_bad_tracks"
            what = 'missing "tracks"' if "tracks" not in playlist else f'"tracks" must be a list, got {_show(tracks)}'
            self._append(pid, False, [], [], 0, [(reason, f"{where}: {what}")])
            return

        # Fast path for well-formed playlists; the slow path finds and drops each bad track.
        problems: list[tuple[str, str]] = []
        try:
            uris = list(map(_URI_GETTER, tracks))
            positions = list(map(_POS_GETTER, tracks))
            well_formed = set(map(type, uris)) <= {str} and "" not in uris and set(map(type, positions)) <= {int}
        except (KeyError, TypeError):
            well_formed = False
        if not well_formed:
            good = []
            for i, track in enumerate(tracks):
                problem = _track_problem(track, f"{where}: track #{i}")
                if problem:
                    problems.append(problem)
                else:
                    good.append(track)
            tracks = good
            uris = [t["track_uri"] for t in tracks]
            positions = [t["pos"] for t in tracks]
        if positions != sorted(positions):
            order = sorted(range(len(tracks)), key=positions.__getitem__)
            tracks = [tracks[i] for i in order]
            uris = [uris[i] for i in order]
        dropped = 0
        if repeats == "drop" and len(set(uris)) != len(uris):
            first: dict[str, int] = {}
            for i, uri in enumerate(uris):
                first.setdefault(uri, i)
            keep = sorted(first.values())
            dropped = len(tracks) - len(keep)
            tracks = [tracks[i] for i in keep]
            uris = [uris[i] for i in keep]
        self._append(pid, True, uris, tracks, dropped, problems)


def _strings(values: list) -> pa.Array:
    """Strings as an Arrow array; a name that is not a string (rare, never a URI: those are checked) becomes null."""
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([v if isinstance(v, str) else None for v in values], pa.string())


def _track_problem(track: Any, where: str) -> tuple[str, str] | None:
    if not isinstance(track, dict):
        return "bad_track", f"{where}: not an object"
    for field in ("track_uri", "pos"):
        if field not in track:
            return f"track_missing_{field}", f'{where}: missing "{field}"'
    uri, pos = track["track_uri"], track["pos"]
    if not isinstance(uri, str) or not uri:
        return "track_bad_track_uri", f'{where}: "track_uri" must be a non-empty string, got {_show(uri)}'
    if not isinstance(pos, int) or isinstance(pos, bool):
        return "track_bad_pos", f'{where}: "pos" must be an integer, got {_show(pos)}'
    return None


def _show(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"


# --- the challenge set and submissions ---------------------------------------------------------------------

CHALLENGE_ROWS = pa.schema(
    [
        ("pid", pa.int64()),
        ("name", pa.string()),  # absent for the challenge's "no title" categories
        ("num_tracks", pa.int32()),
        ("num_samples", pa.int32()),
        ("num_holdouts", pa.int32()),
        ("track_uri", pa.list_(pa.string())),  # the given tracks, in pos order
    ]
)


def parse_challenge_set(data: bytes, file: str) -> pa.Table:
    """challenge_set.json {date, version, playlists: [{pid, name?, num_tracks, num_samples, num_holdouts, tracks}]}.

    Raises MPDFormatError naming the file, pid and field: the challenge set is small and must be whole.
    """
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MPDFormatError(f"{file}: truncated or malformed JSON ({err})") from None
    if not isinstance(document, dict) or not isinstance(document.get("playlists"), list):
        raise MPDFormatError(f'{file}: missing "playlists"')
    columns: dict[str, list] = {name: [] for name in CHALLENGE_ROWS.names}
    for index, playlist in enumerate(document["playlists"]):
        if not isinstance(playlist, dict) or not isinstance(playlist.get("pid"), int):
            raise MPDFormatError(f'{file}: playlist #{index}: missing or non-integer "pid"')
        where = f"{file}: playlist {playlist['pid']}"
        for field in ("num_tracks", "num_samples", "num_holdouts"):
            if not isinstance(playlist.get(field), int):
                raise MPDFormatError(f'{where}: missing or non-integer "{field}"')
        tracks = playlist.get("tracks")
        if not isinstance(tracks, list):
            raise MPDFormatError(f'{where}: missing "tracks"')
        for i, track in enumerate(tracks):
            problem = _track_problem(track, f"{where}: track #{i}")
            if problem:
                raise MPDFormatError(problem[1])
        if len(tracks) != playlist["num_samples"]:
            raise MPDFormatError(f'{where}: "num_samples" is {playlist["num_samples"]} but it has {len(tracks)} tracks')
        columns["pid"].append(playlist["pid"])
        columns["name"].append(playlist.get("name"))
        for field in ("num_tracks", "num_samples", "num_holdouts"):
            columns[field].append(playlist[field])
        columns["track_uri"].append([t["track_uri"] for t in sorted(tracks, key=lambda t: t["pos"])])
    return pa.table(columns, schema=CHALLENGE_ROWS)


SUBMISSION_SIZE = 500  # the challenge asks for exactly 500 distinct songs per playlist


def submission_csv(team_name: str, contact: str, recommendations: dict[int, list[str]], given: dict[int, list[str]]) -> str:
    """The RecSys Challenge 2018 submission format: a team_info line, then `pid, uri, uri, ...` per playlist.

    Checks what the challenge's own validator checks: every challenge pid once, 500 distinct tracks each,
    none of them among the playlist's given tracks.
    """
    if "," in team_name or "," in contact:
        raise SubmissionError("team name and contact must not contain commas")
    missing = set(given) - set(recommendations)
    if missing:
        raise SubmissionError(f"no recommendations for {len(missing)} challenge playlists, e.g. pid {min(missing)}")
    lines = [f"team_info,{team_name},{contact}"]
    for pid in sorted(recommendations):
        tracks = recommendations[pid]
        if pid not in given:
            raise SubmissionError(f"pid {pid} is not in the challenge set")
        if len(tracks) != SUBMISSION_SIZE or len(set(tracks)) != SUBMISSION_SIZE:
            raise SubmissionError(f"pid {pid}: need {SUBMISSION_SIZE} distinct tracks, got {len(set(tracks))}")
        seeded = set(given[pid]) & set(tracks)
        if seeded:
            raise SubmissionError(f"pid {pid}: recommends a given track, {sorted(seeded)[0]}")
        lines.append(", ".join([str(pid), *tracks]))
    return "\n".join(lines) + "\n"


# --- finding slices ----------------------------------------------------------------------------------------


def find_slice_files(uri: str) -> tuple["Location", list[str], list[str]]:
    """The slice files named by a folder, a glob or an s3:// prefix, as (folder, slice paths, other files).

    A folder holding the MPD's `data/` folder works too. Paths are inside the folder's filesystem, sorted by
    the slices' first pid. Raises MPDFormatError when nothing is found.
    """
    import fnmatch

    import pyarrow.fs as pafs

    from mmrec.artifacts import Location, resolve

    pattern = None
    if any(ch in uri for ch in "*?["):
        uri, pattern = uri.rsplit("/", 1) if "/" in uri else (".", uri)
    folder: Location = resolve(uri)
    info = folder.fs.get_file_info(folder.path)
    if info.type == pafs.FileType.File:
        return (folder, [folder.path], []) if is_slice_name(folder.name) else (folder, [], [folder.path])

    def listing(where: Location) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(where.path, allow_not_found=True)
        return [i for i in where.fs.get_file_info(selector) if not i.base_name.startswith(".")]

    entries = listing(folder)
    files = [i for i in entries if i.type == pafs.FileType.File]
    if pattern is None and not any(is_slice_name(i.base_name) for i in files):
        if any(i.type == pafs.FileType.Directory and i.base_name == "data" for i in entries):
            folder = folder.join("data")  # the MPD's own layout: mpd/data/mpd.slice.*.json
            files = [i for i in listing(folder) if i.type == pafs.FileType.File]
    if pattern is not None:
        files = [i for i in files if fnmatch.fnmatch(i.base_name, pattern)]
    slices = sorted((i for i in files if is_slice_name(i.base_name)), key=lambda i: _first_pid(i.base_name))
    others = sorted(i.path for i in files if not is_slice_name(i.base_name))
    if not slices and not others:
        raise MPDFormatError(f"{folder.uri}{'/' + pattern if pattern else ''}: no MPD slices found (mpd.slice.START-END.json)")
    return folder, [i.path for i in slices], others


def _first_pid(name: str) -> int:
    return int(SLICE_NAME.match(name).group(1))
