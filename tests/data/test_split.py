"""Filters to a fixed point, item ids and the leave-one-out split, on hand-written blocks."""

import numpy as np
import pytest

from mmrec.data.split import (
    Block,
    assign_item_ids,
    count_plays,
    filter_block,
    filter_songs_and_playlists,
    leave_one_out_split,
)

SONGS = np.array(list("abcdef"), dtype=object)  # song index -> URI
A, B, C, D, E, F = range(6)


def run_filters(block, threshold, min_length, count_on="all", fixed_point=True):
    def count_pass(keep, length):
        return count_plays(filter_block(block, keep, length), len(SONGS))

    return filter_songs_and_playlists(count_pass, len(SONGS), threshold, min_length, count_on, fixed_point)


# P3 loses e and f (1 play each), falls under 3 songs and goes; that leaves d with 1 play, so a second pass
# drops d from P1. Only the fixed point sees it.
CHAIN = Block.from_lists([1, 2, 3], [[A, B, C, D], [A, B, C], [D, E, F]])


def test_filters_iterate_to_a_fixed_point():
    result = run_filters(CHAIN, threshold=2, min_length=3)
    assert SONGS[result.keep_song].tolist() == ["a", "b", "c"]
    assert result.passes == 2
    assert result.plays.tolist() == [2, 2, 2, 0, 0, 0]
    kept = filter_block(CHAIN, result.keep_song, 3)
    assert kept.pids.tolist() == [1, 2] and [s.tolist() for s in kept.sequences()] == [[A, B, C], [A, B, C]]


def test_without_fixed_point_one_pass_of_each_filter():
    result = run_filters(CHAIN, threshold=2, min_length=3, fixed_point=False)
    assert SONGS[result.keep_song].tolist() == ["a", "b", "c", "d"]
    assert result.plays[D] == 1 and result.passes == 1  # d stays below the threshold: the card says so


def test_counting_on_training_histories_only():
    # training histories are all but the last two songs: e's plays are all held out
    block = Block.from_lists([1, 2, 3], [[A, B, C, E], [A, B, D, E], [A, B, C, D]])
    assert count_plays(block, len(SONGS))[1].tolist() == [3, 3, 0, 0, 0, 0]
    on_all = run_filters(block, threshold=2, min_length=3)
    on_train = run_filters(block, threshold=1, min_length=3, count_on="train")
    assert SONGS[on_all.keep_song].tolist() == ["a", "b", "c", "d", "e"]
    # only a and b are played in training; keeping them leaves playlists of 2 songs, so nothing survives
    assert not on_train.keep_song.any()


def test_item_ids_by_descending_count_then_uri():
    plays = np.array([5, 7, 5, 0, 7, 1])
    keep = np.array([True, True, True, True, True, False])
    ids = assign_item_ids(SONGS, keep, plays, plays)
    # b and e tie on 7 (b first by URI), then a and c on 5; d has no plays left and f was dropped
    assert ids.tolist() == [3, 1, 4, 0, 2, 0]


def test_leave_one_out_split_holds_out_the_last_two_songs():
    item_of_song = np.array([1, 2, 3, 4, 5, 6], dtype=np.int32)
    block = Block.from_lists([10, 11], [[A, B, C, D], [C, E, F]])
    splits = {name: t.to_pylist() for name, t in leave_one_out_split(block, item_of_song, 3).items()}
    assert splits["train"] == [{"pid": 10, "history": [1, 2], "target": None}, {"pid": 11, "history": [3], "target": None}]
    assert splits["valid"] == [{"pid": 10, "history": [1, 2], "target": 3}, {"pid": 11, "history": [3], "target": 5}]
    assert splits["test"] == [{"pid": 10, "history": [1, 2, 3], "target": 4}, {"pid": 11, "history": [3, 5], "target": 6}]


def test_split_drops_unknown_songs_and_playlists_left_too_short():
    item_of_song = np.array([1, 2, 0, 3, 0, 0], dtype=np.int32)  # c, e, f were filtered out
    block = Block.from_lists([10, 11], [[A, C, B, D], [C, E, A, F]])
    test = leave_one_out_split(block, item_of_song, 3)["test"].to_pylist()
    assert test == [{"pid": 10, "history": [1, 2], "target": 3}]


@pytest.mark.parametrize("seed", range(3))
def test_blocks_sum_to_the_whole(seed):
    """Counting block by block (as the Ray passes do) equals counting everything at once."""
    rng = np.random.default_rng(seed)
    sequences = [rng.integers(0, 6, size=rng.integers(3, 9)).tolist() for _ in range(40)]
    whole = count_plays(Block.from_lists(range(40), sequences), 6)
    parts = [count_plays(Block.from_lists(range(i, i + 10), sequences[i : i + 10]), 6) for i in range(0, 40, 10)]
    assert np.array_equal(sum(p[0] for p in parts), whole[0]) and np.array_equal(sum(p[1] for p in parts), whole[1])
