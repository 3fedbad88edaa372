"""prepare's bookkeeping without Ray: slice summaries merged by song, duplicates found, the card worded."""

import json

import numpy as np
import pyarrow as pa

from mmrec.data.mpd import parse_slice
from mmrec.data.summary import SliceSummaries, first_per_song, format_card, slice_order, summarize_slice, summary_rows
from tests.data.slices import playlist, slice_document


def summarized(first: int, playlists: list[dict]) -> tuple[pa.Table, object]:
    name = f"mpd.slice.{first}-{first + 999}.json"
    parsed = parse_slice(json.dumps(slice_document(first, first + 999, playlists)).encode(), name)
    return summarize_slice(parsed.playlists), parsed


def test_slices_merge_into_plays_per_song_problems_and_duplicate_pids():
    one, parsed = summarized(0, [playlist(0, ["s1", "s2", "s3"]), playlist(1, ["s2", "s3", "s4", "s2"])])
    two, _ = summarized(1000, [playlist(1000, ["s3", "s5", "s6"]), playlist(1, ["s1", "s2", "s3"])])  # pid 1 again
    assert one.num_rows == 1 and one["entries"][0].as_py() == 6 and one["repeats_dropped"][0].as_py() == 1
    summaries = SliceSummaries()
    for row in (two, one):  # in any order
        summaries.add(row)
    assert summaries.playlists == 4 and summaries.entries == 12 and summaries.repeats_dropped == 1
    hashes, plays, train_plays = summaries.song_plays()
    uri_of = dict(zip(parsed.songs["song"].to_pylist(), parsed.songs["track_uri"].to_pylist()))
    by_uri = {uri_of[h]: int(p) for h, p in zip(hashes.tolist(), plays) if h in uri_of}
    assert by_uri == {"spotify:track:s1": 2, "spotify:track:s2": 3, "spotify:track:s3": 4, "spotify:track:s4": 1}
    assert len(hashes) == 6 and np.all(train_plays <= plays) and plays.sum() == 12
    assert summaries.duplicate_pids() == {1: ["mpd.slice.0-999.json", "mpd.slice.1000-1999.json"]}
    again = SliceSummaries()
    for row in (one, two):
        again.add(row)
    assert again.content_hash() == summaries.content_hash() and len(summaries.content_hash()) == 64


def test_slices_sort_by_their_first_pid_not_by_name():
    files = ["mpd.slice.10000-10999.json", "mpd.slice.2000-2999.json", "notes.json"]
    assert sorted(files, key=slice_order) == ["notes.json", "mpd.slice.2000-2999.json", "mpd.slice.10000-10999.json"]


def test_first_row_per_song_keeps_the_lowest_pid():
    rows = pa.table({"song": [7, 3, 7, 3], "track_uri": ["b", "a", "b", "a"], "pid": [5, 9, 2, 4]})
    assert first_per_song(rows).to_pylist() == [{"song": 3, "track_uri": "a", "pid": 4},
                                                {"song": 7, "track_uri": "b", "pid": 2}]


def test_the_card_reads_as_a_table_and_a_summary():
    card = {"input": {"slices": 2, "folder": "/data/mpd"}, "read": {"playlists": 2000, "entries": 130000, "songs": 60000},
            "thresholds": {"min_song_count": 5, "min_playlist_length": 3}, "count_on": "all", "repeats": "drop",
            "filter_passes": 2, "playlists": 1990, "songs": 7000, "interactions": 100000, "sparsity": 0.9928,
            "skipped": {"missing_field": 2}, "seconds": 3.5}
    text = format_card(card)
    assert "2 slice(s) at /data/mpd" in text and "songs >= 5 plays (all)" in text and "missing_field 2" in text
    assert dict(summary_rows(card))["songs"] == "7,000 (>= 5 plays, of 60,000)"
