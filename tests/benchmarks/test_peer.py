"""benchmarks/peer.py's export: mmrec's prepared split as RecBole benchmark files, nothing moved between splits."""

import json

from mmrec.layout import read_split
from tests.benchmarks import load_benchmark
from tests.experiment.test_run import write_prepared


GOALS = {"ids": 1.0, "content": 1.1}  # what peer.py's main marks on the rows it judges


def load_peer():
    return load_benchmark("peer")


def read_inter(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "session_id:token\titem_id_list:token_seq\titem_id:token"
    return [(int(pid), [int(x) for x in history.split()], int(target))
            for pid, history, target in (line.split("\t") for line in lines[1:])]


def test_the_export_writes_every_training_target_once_and_valid_and_test_as_prepared(tmp_path):
    write_prepared(tmp_path)
    load_peer().export_recbole(str(tmp_path), tmp_path / "peer")
    folder = tmp_path / "peer" / "mmrec"
    train = read_split(str(tmp_path), "train")
    rows = read_inter(folder / "mmrec.train.inter")
    # One row per target of every training history, after its previous (at most 50) songs: RecBole's augmentation.
    assert len(rows) == sum(len(h) - 1 for h in train.histories)
    expected = [(int(pid), h[max(0, t - 50):t].tolist(), int(h[t]))
                for pid, h in zip(train.pids, train.histories) for t in range(1, len(h))]
    assert rows == expected
    for name in ("valid", "test"):
        split = read_split(str(tmp_path), name)
        inter = read_inter(folder / f"mmrec.{name}.inter")
        assert [target for _, _, target in inter] == split.targets.tolist()  # targets stay in their split
        assert [h for _, h, _ in inter] == [h[-50:].tolist() for h in split.histories]
    splits = json.loads((tmp_path / "peer" / "splits.json").read_text())
    assert splits["test"]["targets"] == read_split(str(tmp_path), "test").targets.tolist()
    assert not (tmp_path / "peer.partial").exists()  # written aside, then moved into place
    # Exported again (a later run of the same split): RecBole's saved checkpoints, which kept results name, stay.
    (tmp_path / "peer" / "saved").mkdir()
    (tmp_path / "peer" / "saved" / "SASRec.pth").write_bytes(b"weights")
    load_peer().export_recbole(str(tmp_path), tmp_path / "peer")
    assert (tmp_path / "peer" / "saved" / "SASRec.pth").read_bytes() == b"weights"


def test_the_report_averages_seeds_and_judges_the_goals_on_the_ratio_of_the_means():
    from types import SimpleNamespace

    def row(model, seed, ndcg):
        return {"model": model, "seed": seed, "parameters": 1000, "seconds": 60.0, "best_epoch": 3, "epochs": 13,
                "goal": GOALS.get(model),
                "metrics": {"ndcg@20": ndcg, "recall@20": 2 * ndcg, "ndcg@500": 3 * ndcg, "recall@500": 4 * ndcg}}

    rows = [row("peer", 0, 0.10), row("ids", 0, 0.11), row("ids + EASE", 0, 0.12), row("content", 0, 0.10),
            row("peer", 1, 0.10), row("ids", 1, 0.09), row("ids + EASE", 1, 0.12), row("content", 1, 0.13)]
    config = SimpleNamespace(artifact_root="/tmp/x", train=SimpleNamespace(patience=10))
    text = load_peer().report(rows, config)
    lines = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert "0.1000 +- 0.0141" in lines["| ids"]  # mean .10, sample deviation of .11 and .09
    assert "1.00x" in lines["| ids"] and "1.15x" in lines["| content"]
    assert "3 / 13, 3 / 13" in lines["| ids"]
    # Rows without per-playlist ranks (a RecBole result kept from before they were recorded): the means alone.
    assert "ids: 1.00x RecBole on NDCG@20 (per seed 1.10x, 0.90x); goal >= 1.0x: met on the means, no interval" in text
    assert "content: 1.15x RecBole on NDCG@20 (per seed 1.00x, 1.30x); goal >= 1.1x: met on the means" in text
    # A row the goals do not judge (a hybrid beside the model alone) gets its ratio and no verdict.
    assert "ids + EASE: 1.20x RecBole on NDCG@20 (per seed 1.20x, 1.20x); no goal" in text
    one_seed = load_peer().report([r for r in rows if r["seed"] == 0], config)
    assert "+-" not in one_seed and "content: 1.00x RecBole on NDCG@20; goal >= 1.1x: NOT met on the means" in one_seed


def test_a_row_of_some_seeds_only_is_compared_with_the_peer_on_those_seeds():
    from types import SimpleNamespace

    def row(model, seed, ndcg):
        return {"model": model, "seed": seed, "parameters": 1, "seconds": 1.0, "best_epoch": 1, "epochs": 1,
                "metrics": {"ndcg@20": ndcg, "recall@20": ndcg, "ndcg@500": ndcg, "recall@500": ndcg}}

    rows = [row("peer", 0, 0.10), row("peer", 1, 0.20), row("ids", 0, 0.10), row("ids", 1, 0.20),
            row("peer + EASE", 1, 0.24)]  # e.g. RecBole's checkpoint kept for seed 1 only
    text = load_peer().report(rows, SimpleNamespace(artifact_root="/tmp/x", train=SimpleNamespace(patience=10)))
    line = next(line for line in text.splitlines() if line.startswith("| peer + EASE"))
    assert "| 1.20x |" in line  # .24 against seed 1's .20, not against the two seeds' mean .15 (1.60x)
    assert "peer + EASE: 1.20x RecBole on NDCG@20 (seed 1 only, against the peer's same seeds)" in text


def test_the_goals_are_judged_on_a_paired_interval_over_the_test_playlists():
    import numpy as np
    from types import SimpleNamespace

    from mmrec.evaluate.metrics import ndcg_at_k

    rng = np.random.default_rng(0)
    peer_ranks = rng.integers(0, 40, size=4000)  # about half the targets in the top 20

    def row(model, ranks):
        ndcg = float(ndcg_at_k(__import__("torch").tensor(ranks), 20).mean())
        return {"model": model, "seed": 0, "parameters": 1000, "seconds": 60.0, "best_epoch": 3, "epochs": 13,
                "test_ranks": ranks.tolist(), "goal": GOALS.get(model),
                "metrics": {"ndcg@20": ndcg, "recall@20": ndcg, "ndcg@500": ndcg, "recall@500": ndcg}}

    config = SimpleNamespace(artifact_root="/tmp/x", train=SimpleNamespace(patience=10))
    peer = load_peer()
    better = np.maximum(peer_ranks - 8, 0)  # every target eight places higher: far above 1.0x
    level = rng.permutation(peer_ranks)  # as good on average, playlist by playlist different
    text = peer.report([row("peer", peer_ranks), row("ids", better), row("content", level)], config)
    assert "goal >= 1.0x: met (95% interval" in text
    assert "goal >= 1.1x: NOT met (95% interval" in text  # level with the peer: the interval lies below 1.1
    low, high = peer.paired_interval([row("ids", level)], {0: row("peer", peer_ranks)})
    assert low < 1.0 < high and high - low < 0.2  # undecided about 1.0, and an interval as narrow as 4,000 allow
    small = rng.integers(0, 40, size=60)
    text = peer.report([row("peer", small), row("ids", rng.permutation(small)), row("content", small)], config)
    assert "goal >= 1.0x: undecided at this size" in text  # 60 playlists cannot tell a tie from a 10% lead
    # Ranks of different playlists (another split) cannot be paired.
    assert peer.paired_interval([row("ids", better[:100])], {0: row("peer", peer_ranks)}) is None
    # Among some playlists only: ahead on the first half, behind on the second, whatever the whole says.
    half = np.arange(len(peer_ranks)) < len(peer_ranks) // 2
    mixed = np.where(half, better, peer_ranks + 30)
    assert peer.paired_interval([row("ids", mixed)], {0: row("peer", peer_ranks)}, among=half)[0] > 1.1
    assert peer.paired_interval([row("ids", mixed)], {0: row("peer", peer_ranks)}, among=~half)[1] < 0.5


def test_the_report_splits_ndcg_by_target_popularity():
    import numpy as np
    import torch
    from types import SimpleNamespace

    from mmrec.evaluate.metrics import ndcg_at_k

    def row(model, seed, ranks):
        ndcg = float(ndcg_at_k(torch.tensor(ranks), 20).mean())
        return {"model": model, "seed": seed, "parameters": 1000, "seconds": 60.0, "best_epoch": 3, "epochs": 13,
                "test_ranks": list(ranks),
                "metrics": {"ndcg@20": ndcg, "recall@20": ndcg, "ndcg@500": ndcg, "recall@500": ndcg}}

    popular = np.array([True, True, False, False])
    # The peer ranks every target first; "ids" hits the popular targets only; "content" the tail only, in one
    # seed of two (so its tail NDCG is the mean over seeds: 0.5).
    rows = [row("peer", 0, [0, 0, 0, 0]), row("ids", 0, [0, 0, 99, 99]), row("content", 0, [99, 99, 0, 0]),
            row("peer", 1, [0, 0, 0, 0]), row("ids", 1, [0, 0, 99, 99]), row("content", 1, [99, 99, 99, 99])]
    config = SimpleNamespace(artifact_root="/tmp/x", train=SimpleNamespace(patience=10))
    text = load_peer().report(rows, config, popular)
    assert "2 playlists; long tail: the other 2" in text
    lines = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    assert lines["| peer"].endswith("| 1.0000 | 1.0000 | 1.00x | 1.00x |")
    # Each ratio with its paired interval (degenerate here: every resample of these playlists gives the same ratio).
    assert lines["| ids"].endswith("| 1.0000 | 0.0000 | 1.00x (1.00x-1.00x) | 0.00x (0.00x-0.00x) |")
    assert lines["| content"].endswith("| 0.0000 | 0.5000 | 0.00x (0.00x-0.00x) | 0.50x (0.50x-0.50x) |")
    # Without ranks (a result kept from before they were recorded) there is no band table, and no error.
    bare = [{k: v for k, v in r.items() if k != "test_ranks"} for r in rows]
    assert "By target popularity" not in load_peer().report(bare, config, popular)


def test_popular_targets_follow_the_training_plays_of_the_test_targets(tmp_path):
    from mmrec.layout import read_items, read_split, train_counts

    write_prepared(tmp_path)
    popular = load_peer().popular_targets(str(tmp_path))
    test = read_split(str(tmp_path), "test")
    plays = train_counts(read_items(str(tmp_path)))[test.targets - 1]  # each test target's training plays
    assert popular.dtype == bool and len(popular) == len(test.targets)
    assert 0 < popular.sum() < len(popular)
    assert plays[popular].min() >= plays[~popular].max()  # in the split's order: the head's targets play more


def test_a_kept_recbole_result_is_reused_only_for_the_same_settings_and_split():
    peer = load_peer()
    wanted = {"hidden": 64, "layers": 2, "heads": 2, "max_length": 50, "batch_size": 256, "patience": 10, "seed": 1}
    kept = {"playlists": 3995, "settings": {**wanted, "dropout": "0.5", "learning_rate": 0.001}}
    assert peer.kept_recbole_mismatches(kept, wanted, 3995) == {}
    other = {**kept, "playlists": 995, "settings": {**kept["settings"], "batch_size": 2048, "seed": 0}}
    assert peer.kept_recbole_mismatches(other, wanted, 3995) == {
        "batch_size": (2048, 256), "seed": (0, 1), "test playlists": (995, 3995)}
    assert set(peer.kept_recbole_mismatches({"playlists": 3995}, wanted, 3995)) == set(wanted)  # no settings kept
