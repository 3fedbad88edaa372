"""Parsing slices: the MPD's quirks, repeats, and every kind of bad record, named by file, pid and field."""

import json

import pytest

from mmrec.data.mpd import (
    MPDFormatError,
    uri_hashes,
    find_slice_files,
    parse_challenge_set,
    parse_slice,
    submission_csv,
)
from tests.data.slices import playlist, slice_document, track, write_slice

FILE = "mpd.slice.0-999.json"


def parse(document, repeats="drop"):
    """Playlist rows, with each row's song hashes turned back into URIs through the slice's song table."""
    data = document if isinstance(document, bytes) else json.dumps(document, indent=4).encode()
    parsed = parse_slice(data, FILE, repeats)
    uri_of = dict(zip(parsed.songs["song"].to_pylist(), parsed.songs["track_uri"].to_pylist()))
    rows = parsed.playlists.to_pylist()
    for row in rows:
        row["track_uri"] = [uri_of[h] for h in row["songs"]]
    return rows


def test_real_mpd_quirks_parse():
    rows = parse(slice_document(0, 1, [
        playlist(0, ["x", "y", "z", "w", "v"], collaborative="true", description="road trip songs"),
        playlist(1, [f"s{i}" for i in range(250)]),
    ]))
    assert [r["pid"] for r in rows] == [0, 1] and all(r["valid"] for r in rows)
    assert rows[0]["track_uri"] == [f"spotify:track:{s}" for s in "xyzwv"]
    assert len(rows[1]["track_uri"]) == 250
    assert rows[0]["file_digest"] and rows[1]["file_digest"] is None  # the file's digest rides on its first row
    assert rows[0]["problem_reasons"] == []


def test_each_distinct_song_is_listed_once_with_its_first_occurrence():
    first, second = playlist(7, ["a", "b"]), playlist(3, ["b", "c"])
    second["tracks"][0]["track_name"] = "another spelling"
    songs = parse_slice(json.dumps(slice_document(0, 1, [first, second])).encode(), FILE).songs.to_pylist()
    by_uri = {s["track_uri"]: s for s in songs}
    assert sorted(by_uri) == ["spotify:track:a", "spotify:track:b", "spotify:track:c"]
    assert by_uri["spotify:track:b"]["track_name"] == "Song b" and by_uri["spotify:track:b"]["pid"] == 7
    assert by_uri["spotify:track:c"] == {
        "song": uri_hashes(["spotify:track:c"])[0], "track_uri": "spotify:track:c", "artist_uri": "spotify:artist:a0",
        "album_uri": "spotify:album:b0", "track_name": "Song c", "artist_name": "Artist a0",
        "album_name": "Album b0", "duration_ms": 200001, "pid": 3,
    }


def test_uri_hashes_are_stable_and_independent_of_the_batch():
    alone = uri_hashes(["spotify:track:b"])
    assert uri_hashes(["a", "spotify:track:b", "a much longer uri than the others"])[1] == alone[0]
    assert alone[0] == 5809612618527674219  # fixed forever: staged data from another process must agree
    assert len(set(uri_hashes([f"spotify:track:{i:022d}" for i in range(20000)]))) == 20000


def test_tracks_follow_pos_not_file_order():
    p = playlist(5, ["a", "b", "c"])
    p["tracks"] = list(reversed(p["tracks"]))
    assert parse(slice_document(0, 0, [p]))[0]["track_uri"] == ["spotify:track:a", "spotify:track:b", "spotify:track:c"]


def test_repeats_are_dropped_keeping_the_first_or_kept():
    p = playlist(3, ["a", "b", "a", "c", "b"])
    dropped = parse(slice_document(0, 0, [p]))[0]
    assert dropped["track_uri"] == ["spotify:track:a", "spotify:track:b", "spotify:track:c"]
    assert dropped["repeats_dropped"] == 2
    kept = parse(slice_document(0, 0, [p]), repeats="keep")[0]
    assert len(kept["track_uri"]) == 5 and kept["repeats_dropped"] == 0


def bad_track(field, value):
    p = playlist(17, ["a", "b", "c", "d"])
    if value is KeyError:
        del p["tracks"][2][field]
    else:
        p["tracks"][2][field] = value
    return slice_document(0, 0, [p])


def without(field):
    p = playlist(17, ["a", "b", "c"])
    del p[field]
    return slice_document(0, 0, [p])


@pytest.mark.parametrize(
    "document, reason, words",
    [
        (b'{"info": {}, "playlists": [{"pid": 1, "tra', "malformed_json", ["truncated or malformed JSON"]),
        (b"{not json", "malformed_json", ["malformed JSON"]),
        (b"", "empty_file", ["empty file"]),
        ({"info": {}}, "no_playlists", ['missing "playlists"']),
        (without("pid"), "playlist_missing_pid", ["playlist #0", 'missing "pid"']),
        (without("tracks"), "playlist_missing_tracks", ["playlist 17", 'missing "tracks"']),
        (bad_track("track_uri", KeyError), "track_missing_track_uri", ["playlist 17", "track #2", 'missing "track_uri"']),
        (bad_track("pos", "2"), "track_bad_pos", ["playlist 17", "track #2", '"pos" must be an integer, got str "2"']),
        (bad_track("track_uri", None), "track_bad_track_uri", ["playlist 17", "track #2", '"track_uri"', "got null"]),
    ],
)
def test_bad_records_are_recorded_with_file_pid_and_field(document, reason, words):
    rows = parse(document)
    reasons = [r for row in rows for r in row["problem_reasons"]]
    messages = [m for row in rows for m in row["problem_messages"]]
    assert reasons == [reason]
    assert messages[0].startswith(FILE) and all(w in messages[0] for w in words), messages[0]


def test_a_bad_track_costs_only_that_track():
    rows = parse(bad_track("track_uri", None))
    assert rows[0]["valid"] and rows[0]["track_uri"] == ["spotify:track:a", "spotify:track:b", "spotify:track:d"]


def test_finding_slices_in_folders_globs_and_the_mpd_layout(tmp_path):
    write_slice(tmp_path / "mpd" / "data", 1000, 1999, [playlist(1000, ["a", "b", "c"])])
    write_slice(tmp_path / "mpd" / "data", 0, 999, [playlist(0, ["a", "b", "c"])])
    (tmp_path / "mpd" / "README.md").write_text("the MPD")
    folder, slices, others = find_slice_files(str(tmp_path / "mpd"))  # the MPD's root: slices are in data/
    assert [p.rsplit("/", 1)[1] for p in slices] == ["mpd.slice.0-999.json", "mpd.slice.1000-1999.json"]
    assert others == [] and folder.uri.endswith("mpd/data")
    _, slices, _ = find_slice_files(str(tmp_path / "mpd" / "data" / "mpd.slice.1000-*.json"))
    assert len(slices) == 1
    (tmp_path / "mpd" / "data" / "notes.txt").write_text("hello")
    _, _, others = find_slice_files(str(tmp_path / "mpd" / "data"))
    assert [o.rsplit("/", 1)[1] for o in others] == ["notes.txt"]
    with pytest.raises(MPDFormatError, match="no MPD slices found"):
        find_slice_files(str(tmp_path / "empty"))


CHALLENGE = {
    "date": "2018-01-16 08:47:28.198015",
    "version": "v1",
    "playlists": [
        {"pid": 1000002, "name": "spooky", "num_tracks": 5, "num_samples": 2, "num_holdouts": 3,
         "tracks": [track("b", 1), track("a", 0)]},
        {"pid": 1000003, "num_tracks": 40, "num_samples": 0, "num_holdouts": 40, "tracks": []},
    ],
}


def test_challenge_set_parses_with_and_without_names():
    rows = parse_challenge_set(json.dumps(CHALLENGE).encode(), "challenge_set.json").to_pylist()
    assert rows[0]["track_uri"] == ["spotify:track:a", "spotify:track:b"] and rows[0]["name"] == "spooky"
    assert rows[1]["name"] is None and rows[1]["track_uri"] == [] and rows[1]["num_holdouts"] == 40


def test_challenge_set_errors_name_the_pid_and_field():
    bad = json.loads(json.dumps(CHALLENGE))
    bad["playlists"][0]["num_samples"] = 3
    with pytest.raises(MPDFormatError, match=r'challenge_set.json: playlist 1000002: "num_samples" is 3 but it has 2'):
        parse_challenge_set(json.dumps(bad).encode(), "challenge_set.json")


def test_submission_csv_is_the_challenge_format_and_is_checked():
    given = {1: ["spotify:track:a"], 2: []}
    recs = {pid: [f"spotify:track:r{i}" for i in range(500)] for pid in given}
    text = submission_csv("team", "team@example.com", recs, given)
    lines = text.splitlines()
    assert lines[0] == "team_info,team,team@example.com"
    assert lines[1].startswith("1, spotify:track:r0, spotify:track:r1") and len(lines[1].split(", ")) == 501
    with pytest.raises(ValueError, match="need 500 distinct"):
        submission_csv("team", "x@y", {1: recs[1][:499], 2: recs[2]}, given)
    with pytest.raises(ValueError, match="recommends a given track"):
        submission_csv("team", "x@y", {1: ["spotify:track:a", *recs[1][:499]], 2: recs[2]}, given)
    with pytest.raises(ValueError, match="no recommendations for 1"):
        submission_csv("team", "x@y", {1: recs[1]}, given)
