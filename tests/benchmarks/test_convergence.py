"""benchmarks/convergence.py: one variant trained in process, its validation split by target popularity."""

from mmrec.config import load_config
from mmrec.evaluate.metrics import popular_songs
from mmrec.layout import read_items, read_split, train_counts
from tests.benchmarks import load_benchmark
from tests.experiment.test_run import write_prepared


def test_a_variant_reports_its_best_validation_split_by_target_popularity(tmp_path):
    write_prepared(tmp_path)
    config = load_config(overrides={"artifact_root": str(tmp_path), "train.architecture": "sasrec",
                                    "train.modalities": "[]", "train.epochs": 3, "train.batch_size": 32,
                                    "train.valid_playlists": 0, "train.ks": "[5, 10]", "train.metric": "ndcg@10"})
    run = load_benchmark("convergence").train_variant(config, minutes=5, say=lambda message: None)
    assert len(run["curve"]) == len(run["bands"]) == run["epochs"] == 3
    valid = read_split(str(tmp_path), "valid")
    popular = popular_songs(train_counts(read_items(str(tmp_path))))[valid.targets - 1]
    assert 0 < popular.sum() < len(popular)
    # The two bands are the best epoch's playlists split in two: their weighted mean is the whole.
    whole = (popular.sum() * run["popular"] + (~popular).sum() * run["long_tail"]) / len(popular)
    assert abs(whole - run["best"]) < 1e-3
    assert [run["popular"], run["long_tail"]] == run["bands"][run["best_epoch"] - 1]
