"""mmrec against a real peer in the same run: RecBole's SASRec and mmrec's models on one prepared split.

    .venv/bin/python benchmarks/peer.py                                  # the demo corpus (configs/demo.yaml)
    .venv/bin/python benchmarks/peer.py --input /data/mpd/data --root /data/mmrec-peer   # any MPD-format folder
    .venv/bin/python benchmarks/peer.py --set train.hidden=128 --recbole-epochs 100      # other sizes, budgets
    .venv/bin/python benchmarks/peer.py --seeds 0 1 2                                    # means over seeds

1. The prepared split (prepare, and embed when a multimodal model is asked for) comes from the config, run only
   where its artifacts are missing. With --input, the folder (or s3:// prefix) is prepared under --root; embed then
   needs modality sources in the config (`embed.*`), or `--modalities ""` compares ID-only models alone.
2. The split is written as RecBole benchmark files (train/valid/test already split, one row per training target
   with its previous <= 50 songs, as RecBole's own augmentation makes them), so RecBole cannot move validation
   songs into training; splits.json keeps every valid/test playlist's whole history.
3. RecBole 1.2.1 runs in its own virtual environment (benchmarks/.venv-recbole; it needs numpy 1.26, pandas < 2.2
   and setuptools < 81), made on first use: SASRec at the same size (hidden 64, 2 layers, 2 heads, max length 50,
   full softmax) to early stopping on validation NDCG@20, both validation and test excluding each playlist's
   whole history as mmrec does, and its test metrics computed by mmrec's own metric code (benchmarks/peer_recbole.py).
4. mmrec trains SASRec (IDs) and its multimodal SASRec (--modalities, all four by default) to early stopping on
   the same split, with the same patience, and registers each as the product does: blended with EASE where
   validation chose a blend (train.ease_blend_weights, models/hybrid.py). Each is scored on every test target by
   the metric code of `mmrec evaluate`, once, keeping each playlist's rank: the model alone, the registered hybrid,
   and the hybrid's EASE alone (what each half brings).
5. The table: NDCG/Recall@20 and @500, epochs (best / run), parameters, time, and each model's ratio to RecBole
   on NDCG@20 and Recall@20. Goals: mmrec SASRec (IDs) alone >= 1.0x (like for like), mmrec's best multimodal
   model as registered (the hybrid) >= 1.1x; the other rows carry no goal. Both are judged on a paired
   bootstrap interval over the test playlists (every model's per-playlist ranks are kept): met when the whole
   interval clears the goal, not met when it lies below, undecided when the test set is too small to tell. Then
   NDCG@20 by target popularity (the most played fifth of the songs, and the long tail), each ratio to RecBole
   with its paired interval: where a model's lead or lag comes from (content should win on the tail).
   Written to <root>/reports/peer/results.{md,json} and printed.
6. With --seeds 0 1 2, steps 3-4 run once per seed (RecBole's initialisation and order too); the table gives each
   model's mean +- standard deviation, and the goals are judged on the ratio of the means, with each seed's own.
   RecBole is deterministic on CPU at a fixed seed, so its result can be banked a seed at a time
   (--recbole-only) and reused (--skip-recbole, reading <root>/reports/peer/recbole-seed<N>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RECBOLE_VENV = REPO / "benchmarks" / ".venv-recbole"
RECBOLE_PACKAGES = ["recbole==1.2.1", "numpy==1.26.4", "pandas<2.2", "setuptools<81", "torch>=2.4,<2.14"]
MAX_LENGTH = 50
MODALITIES = ("audio", "lyrics", "album_art", "artist_bio")
GOALS = (1.0, 1.1)  # x RecBole's NDCG@20: SASRec (IDs) alone, and the best multimodal model (issue 15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--input", default="", help="an MPD-format folder or s3:// prefix (default: the config's)")
    parser.add_argument("--root", default="", help="artifact root (default: the config's)")
    parser.add_argument("--modalities", default=",".join(MODALITIES),
                        help="the multimodal model's modalities, comma-separated ('' = ID-only models only)")
    parser.add_argument("--epochs", type=int, default=200, help="most epochs for every trained model")
    parser.add_argument("--patience", type=int, default=10, help="early-stopping patience for every trained model")
    parser.add_argument("--recbole-epochs", type=int, default=0, help="RecBole's most epochs (default: --epochs)")
    parser.add_argument("--recbole-batch-size", type=int, default=2048,
                        help="RecBole's training rows per step (its default 2048; a small split wants fewer, or an "
                        "epoch is a handful of steps)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                        help="seeds to train every model with (RecBole's too); the table gives each model's mean "
                        "and spread, and the ratios of the means")
    parser.add_argument("--skip-recbole", action="store_true",
                        help="reuse the last RecBole result of each seed in the report folder")
    parser.add_argument("--recbole-only", action="store_true",
                        help="run (or, with --skip-recbole, reuse) RecBole for each seed, keep its result in the report "
                        "folder and stop: banks a seed's peer run (on 2 cores, 85 minutes on the full demo) for "
                        "later runs with --skip-recbole")
    parser.add_argument("--recbole-hybrid", action="store_true",
                        help="also blend each seed's RecBole SASRec with the ID-only model's EASE as mmrec's hybrid "
                        "does (weight chosen on validation): the like-for-like peer of a hybrid; needs the seed's "
                        "RecBole checkpoint (its kept result names it; seeds without one are skipped)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for every stage, e.g. --set train.hidden=128")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from mmrec import artifacts
    from mmrec.config import load_config
    from mmrec.layout import read_split

    overrides = dict(item.split("=", 1) for item in args.set)
    # Trained to early stopping, so the product's default song rows, not the demo config's 10-epoch choice.
    overrides.setdefault("train.item_norm", "null")
    if args.root:
        overrides["artifact_root"] = args.root
    if args.input:
        overrides["prepare.input"] = args.input
    overrides.update({"train.epochs": args.epochs, "train.patience": args.patience, "train.valid_playlists": 0})
    config = load_config(args.config, overrides)
    modalities = tuple(m for m in args.modalities.split(",") if m)
    root = artifacts.resolve(config.artifact_root)
    out = root.join("reports", "peer")
    say(f"artifact root {root.uri}")

    # RecBole alone needs no embeddings: a banked seed does not wait for the four modalities' embed.
    prepare_if_missing(config, with_embeddings=bool(modalities) and not args.recbole_only, demo=not args.input)
    work = Path(config.artifact_root if "://" not in root.uri else "/tmp/mmrec-peer") / "peer-recbole"
    cells = [("mmrec SASRec (IDs)", {"architecture": "sasrec", "modalities": []})]
    if modalities:
        cells.append((f"mmrec SASRec + {' + '.join(modalities)}", {"architecture": "sasrec", "modalities": modalities}))
    rows, exported = [], False
    test_playlists = len(read_split(config.artifact_root, "test").targets)
    for seed in args.seeds:
        kept = out.join(f"recbole-seed{seed}.json")
        if args.skip_recbole and kept.exists():
            recbole = artifacts.read_json(kept)
            wanted = {"hidden": config.train.hidden, "layers": config.train.layers, "heads": config.train.heads,
                      "max_length": MAX_LENGTH, "batch_size": args.recbole_batch_size, "patience": args.patience,
                      "seed": seed}
            differ = kept_recbole_mismatches(recbole, wanted, test_playlists)
            if differ:
                raise SystemExit(f"peer: {kept.uri} was run with other settings than this run's ("
                                 + ", ".join(f"{key} {old} there, {new} here" for key, (old, new) in differ.items())
                                 + "): rerun without --skip-recbole, or with the same settings")
            say(f"RecBole seed {seed}: the last result kept (--skip-recbole)")
        else:
            if not exported:  # once a run, from this split (files left by an earlier run may be of another)
                export_recbole(config.artifact_root, work)
                exported = True
            recbole = run_recbole(work, args.recbole_epochs or args.epochs, args.patience, seed, config.train.hidden,
                                  config.train.layers, config.train.heads, args.recbole_batch_size)
            if "://" not in out.uri:  # the checkpoint beside the kept result, where --recbole-hybrid finds it later
                banked = Path(out.join(f"recbole-seed{seed}.pth").path)
                banked.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(recbole["checkpoint"], banked)
                recbole["checkpoint"] = str(banked)
            artifacts.write_json(kept, recbole)
        rows.append({**recbole, "seed": seed})
        if args.recbole_only:
            say(f"RecBole seed {seed}: test NDCG@20 {recbole['metrics']['ndcg@20']:.4f}, kept in {kept.uri}")
            continue
        for (name, train_overrides), goal in zip(cells, GOALS):
            cell_rows = train_and_evaluate(config, name, {**train_overrides, "seed": seed}, with_ease=goal == 1.0)
            # The goals: SASRec (IDs) alone against RecBole's SASRec (like for like), and mmrec's best
            # multimodal model, as the product registers it (the hybrid, or the model alone when validation kept it
            # alone), >= 1.1x; the other rows show where a gain comes from.
            judged = [row for row in cell_rows if "EASE alone" not in row["model"]][-1] if goal > 1.0 else cell_rows[0]
            rows.extend({**row, "seed": seed, "goal": goal if row is judged else None} for row in cell_rows)
            if args.recbole_hybrid and goal == 1.0:
                if not exported:
                    export_recbole(config.artifact_root, work)
                    exported = True
                blended = recbole_hybrid(config, work, recbole, seed, cell_rows[0]["run"], args.recbole_batch_size)
                if blended:
                    rows.append({**blended, "seed": seed, "goal": None})
    if args.recbole_only:
        return
    markdown = report(rows, config, popular_targets(config.artifact_root))
    artifacts.write_text(out.join("results.md"), markdown)
    artifacts.write_json(out.join("results.json"), artifacts.card(rows=rows))
    print(markdown, flush=True)


def kept_recbole_mismatches(kept: dict, wanted: dict, playlists: int) -> dict:
    """{what: (kept, wanted)} for each setting of `wanted` (and the number of test playlists) a kept RecBole result
    was not run with: it is reused only for this run's sizes, patience, batch size and seed, and this split's
    test playlists (its ranks are paired with mmrec's playlist by playlist)."""
    settings = kept.get("settings", {})
    differ = {key: (settings.get(key), value) for key, value in wanted.items() if settings.get(key) != value}
    if kept.get("playlists") != playlists:
        differ["test playlists"] = (kept.get("playlists"), playlists)
    return differ


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} peer: {message}", flush=True)


# --- the split, once ---------------------------------------------------------------------------------------

def prepare_if_missing(config, with_embeddings: bool, demo: bool) -> None:
    """Run demo-data/prepare/embed where their artifacts are missing (each stage also runs alone as mmrec <stage>)."""
    from mmrec import artifacts, pipeline

    root = artifacts.resolve(config.artifact_root)
    stages = []
    if not root.join("data", "card.json").exists():
        stages += (["demo-data"] if demo else []) + ["prepare"]
    if with_embeddings and not root.join("embeddings", "card.json").exists():
        stages.append("embed")
    if stages:
        say(f"running {', '.join(stages)}")
        pipeline.run(config.model_copy(update={"pipeline": config.pipeline.model_copy(update={"stages": tuple(stages)})}))


def export_recbole(root: str, folder: Path) -> None:
    """RecBole benchmark files of the prepared split (written to a temporary folder, then moved into place)."""
    from mmrec.layout import read_split

    splits = {name: read_split(root, name) for name in ("train", "valid", "test")}
    temporary = folder.with_name(folder.name + ".partial")
    shutil.rmtree(temporary, ignore_errors=True)
    (temporary / "mmrec").mkdir(parents=True)
    header = "session_id:token\titem_id_list:token_seq\titem_id:token\n"
    with open(temporary / "mmrec" / "mmrec.train.inter", "w") as file:
        file.write(header)
        for pid, history in zip(splits["train"].pids, splits["train"].histories):
            for t in range(1, len(history)):  # every target of the history, after its previous <= 50 songs
                file.write(f"{pid}\t{' '.join(map(str, history[max(0, t - MAX_LENGTH):t]))}\t{history[t]}\n")
    for name in ("valid", "test"):
        split = splits[name]
        with open(temporary / "mmrec" / f"mmrec.{name}.inter", "w") as file:
            file.write(header)
            for pid, history, target in zip(split.pids, split.histories, split.targets):
                file.write(f"{pid}\t{' '.join(map(str, history[-MAX_LENGTH:]))}\t{target}\n")
    with open(temporary / "splits.json", "w") as file:
        json.dump({name: {"pids": splits[name].pids.tolist(), "histories": [h.tolist() for h in splits[name].histories],
                          "targets": splits[name].targets.tolist()} for name in ("valid", "test")}, file)
    if (folder / "saved").is_dir():  # RecBole's checkpoints of earlier runs: kept results point at them
        (folder / "saved").rename(temporary / "saved")
    shutil.rmtree(folder, ignore_errors=True)
    temporary.rename(folder)
    say(f"RecBole benchmark files in {folder} ({sum(len(h) - 1 for h in splits['train'].histories):,} training rows)")


# --- RecBole -----------------------------------------------------------------------------------------------

def recbole_python() -> Path:
    """The RecBole venv's python, made on first use."""
    python = RECBOLE_VENV / "bin" / "python"
    stamp = RECBOLE_VENV / ".installed"
    if not stamp.exists():
        say(f"creating {RECBOLE_VENV} (RecBole 1.2.1 and its pins; a few minutes, once)")
        subprocess.run([sys.executable, "-m", "venv", str(RECBOLE_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *RECBOLE_PACKAGES], check=True)
        stamp.write_text(" ".join(RECBOLE_PACKAGES) + "\n")
    return python


def run_recbole(folder: Path, epochs: int, patience: int, seed: int, hidden: int, layers: int, heads: int,
                batch_size: int = 2048) -> dict:
    folder = folder.resolve()
    result_file = folder / "recbole-result.json"
    command = [str(recbole_python()), str(REPO / "benchmarks" / "peer_recbole.py"), str(folder), "--out",
               str(result_file), "--epochs", str(epochs), "--patience", str(patience), "--seed", str(seed),
               "--hidden", str(hidden), "--layers", str(layers), "--heads", str(heads),
               "--batch-size", str(batch_size)]
    say("RecBole SASRec: training to early stopping")
    subprocess.run(command, check=True, cwd=folder)  # RecBole writes log_tensorboard/ into its working folder
    return json.loads(result_file.read_text())


def recbole_hybrid(config, folder: Path, recbole: dict, seed: int, id_run: str, batch_size: int) -> dict | None:
    """RecBole's SASRec (its kept checkpoint) blended with the EASE of mmrec's registered ID-only hybrid, the weight
    and a popularity prior added to RecBole's scores (train.ease_blend_priors x the ID model's log plays; RecBole's
    own prior is 0) chosen together on the validation targets, as `mmrec train` chooses its own: the row a
    hybrid should be compared with like for like. The checkpoint is the one the kept result names, or else
    recbole-seed<seed>.pth beside it (banked copies). None when the checkpoint or the hybrid is missing."""
    import torch

    from mmrec import artifacts
    from mmrec.evaluate.metrics import MetricTotals, evaluate_scorer
    from mmrec.layout import read_split
    from mmrec.models import registry
    from mmrec.models.hybrid import Hybrid, by_prior, choose_blend, scorer_with

    checkpoint = Path(recbole.get("checkpoint", ""))
    banked = artifacts.resolve(config.artifact_root).join("reports", "peer", f"recbole-seed{seed}.pth")
    if not checkpoint.is_file() and "://" not in banked.uri:  # a kept result copied in, with its checkpoint beside it
        checkpoint = Path(banked.path)
    registered = registry.load_model(artifacts.resolve(config.artifact_root).join("models", id_run))
    if not checkpoint.is_file() or registered.hybrid is None:
        say(f"RecBole + EASE: skipped (checkpoint {checkpoint} {'found' if checkpoint.is_file() else 'missing'}, "
            f"hybrid {'found' if registered.hybrid else 'missing'})")
        return None
    folder = folder.resolve()
    scores_file = folder / "recbole-scores.npz"
    say(f"RecBole + EASE: scoring valid and test with {checkpoint.name}")
    subprocess.run([str(recbole_python()), str(REPO / "benchmarks" / "peer_recbole.py"), str(folder), "--out",
                    str(folder / "recbole-rescored.json"), "--checkpoint", str(checkpoint), "--save-scores",
                    str(scores_file), "--batch-size", str(batch_size)], check=True, cwd=folder)
    kept = np.load(scores_file)

    def replay(matrix: np.ndarray):
        """A scorer that gives back the kept rows in the order evaluation asks for them (its batches in order)."""
        position = [0]

        def score(padded):
            rows = matrix[position[0]:position[0] + len(padded)]
            position[0] += len(padded)
            return torch.from_numpy(rows)
        return score

    ease = registered.hybrid.ease
    valid, test = read_split(config.artifact_root, "valid"), read_split(config.artifact_root, "test")
    log_plays = registered.model.popularity_log.detach().cpu()
    shifts = {0.0: None, **{p: p * log_plays for p in config.train.ease_blend_priors if p != 0}}
    (prior, weight), measured = choose_blend(replay(kept["valid"]), ease, config.train.ease_blend_weights,
                                             valid.histories, valid.targets, config.train.metric, config.train.ks,
                                             shifts=shifts)
    totals = evaluate_scorer(scorer_with(Hybrid(ease, weight, prior, shifts[prior]), replay(kept["test"])),
                             test.histories, test.targets, (20, 500), totals=MetricTotals((20, 500), keep_ranks=True))
    return {"model": "RecBole 1.2.1 SASRec + EASE (mmrec's hybrid)", "metrics": totals.means(),
            "playlists": totals.count, "test_ranks": totals.ranks().tolist(), "best_epoch": recbole["best_epoch"],
            "epochs": recbole["epochs"], "parameters": recbole["parameters"] + len(ease.items) ** 2,
            "seconds": recbole["seconds"], "blend_weight": weight, "model_prior": prior, "hybrid": True,
            "valid_by_prior": by_prior(measured, config.train.metric)}


# --- mmrec -------------------------------------------------------------------------------------------------

def train_and_evaluate(config, name: str, train_overrides: dict, with_ease: bool = False) -> list[dict]:
    """Rows of the model's test metrics: the model alone, and as registered, blended with EASE when validation
    chose a blend; with `with_ease`, the hybrid's EASE alone too (the hybrid's other half, beside the peer)."""
    from mmrec import artifacts
    from mmrec.train import run as train

    cell = config.model_copy(update={"train": config.train.model_copy(update={**train_overrides, "run_name": ""})})
    cell = cell.model_validate(cell.model_dump())  # re-check the merged settings
    say(f"{name}: training to early stopping")
    model_uri = train.registered_already(cell) or train.run(cell)["model"]
    loc = artifacts.resolve(model_uri)
    metrics, card = artifacts.read_json(loc.join("metrics.json")), artifacts.read_json(loc.join("card.json"))
    common = {"epochs": len(metrics["history"]), "best_epoch": metrics["best_epoch"] + 1, "run": train.run_name(cell)}
    # the epochs' own times, so a model trained by an earlier run shows its training time, not zero
    seconds = round(sum(epoch["seconds"] for epoch in metrics["history"]), 1)
    notes = metrics.get("hybrid", {})
    rows = []
    for scorer in ("model", "hybrid", "ease") if with_ease else ("model", "hybrid"):
        test = score_test(cell, loc, scorer)
        if test is None:
            continue
        hybrid = scorer == "hybrid"
        label = {"model": name, "hybrid": f"{name} + EASE (hybrid)",
                 "ease": f"EASE alone (the hybrid's, lambda {notes.get('ease_l2', 0):g})"}[scorer]
        rows.append({"model": label, "metrics": test.means(), "playlists": test.count,
                     "test_ranks": test.ranks().tolist(), **common, "hybrid": hybrid,
                     **({"best_epoch": "-", "epochs": "-"} if scorer == "ease" else {}),
                     "parameters": (card["parameters"] if scorer != "ease" else 0)
                     + (notes.get("ease_songs_fitted", 0) ** 2 if scorer != "model" else 0),
                     "seconds": (seconds if scorer != "ease" else 0.0) + (notes.get("seconds", 0.0) if scorer != "model" else 0.0),
                     **({"ease_l2": notes["ease_l2"], "blend_weight": notes["weight"],
                         "model_prior": notes.get("model_prior")} if hybrid else {})})
    return rows


def popular_targets(root: str) -> np.ndarray:
    """(test playlists,) bool in the split's order: is the playlist's test target one of the most played songs
    (`popular_songs`: the most played fifth by training plays, as `mmrec experiment`'s popularity bands)."""
    from mmrec.evaluate.metrics import popular_songs
    from mmrec.layout import read_items, read_split, train_counts

    return popular_songs(train_counts(read_items(root)))[read_split(root, "test").targets - 1]


def score_test(config, loc, scorer: str):
    """The registered model at `loc` on every test target (@20 and @500, as RecBole's runner scores), with each
    playlist's rank kept in the split's order (the order the RecBole files were written in) for the paired interval
    of the report: the model alone ("model"), as registered, blended with EASE ("hybrid"), or the hybrid's EASE
    alone ("ease"); None for the last two when validation kept the model alone."""
    from mmrec.evaluate.metrics import MetricTotals, evaluate_scorer
    from mmrec.layout import read_split
    from mmrec.models import registry

    model = registry.load_model(loc)
    if scorer != "model" and model.hybrid is None:
        return None
    score = {"model": model.model.scorer, "hybrid": model.scorer, "ease": lambda: model.hybrid.ease.score}[scorer]()
    test = read_split(config.artifact_root, "test")
    return evaluate_scorer(score, test.histories, test.targets, (20, 500),
                           totals=MetricTotals((20, 500), keep_ranks=True))


# --- the table ---------------------------------------------------------------------------------------------

def report(rows: list[dict], config, popular: np.ndarray | None = None) -> str:
    """The markdown table: per model (the first is the peer), its mean over seeds (and spread, with several), the
    ratios of its means to the peer's, and the goals, judged on the mean ratio of NDCG@20; with `popular` (a bool
    per test playlist, in the split's order: is its target a popular song), NDCG@20 by target popularity too."""
    models = list(dict.fromkeys(row["model"] for row in rows))
    by_model = {name: [row for row in rows if row["model"] == name] for name in models}
    seeds = sorted({row["seed"] for row in rows})
    peer_by_seed = {row["seed"]: row for row in by_model[models[0]]}

    def peer_of(group: list[dict]) -> dict:
        """The peer's mean metrics over the seeds this group ran (a row may lack some seeds)."""
        return mean_metrics([peer_by_seed[row["seed"]] for row in group if row["seed"] in peer_by_seed])

    lines = ["# mmrec against RecBole's SASRec on one split (test targets, whole history excluded)", "",
             f"Artifact root `{config.artifact_root}`; every model trained to early stopping (patience "
             f"{config.train.patience}) on validation NDCG@20; seeds {', '.join(map(str, seeds))}"
             + (" (mean +- standard deviation over seeds; ratios of the means)." if len(seeds) > 1 else "."), "",
             "| model | NDCG@20 | Recall@20 | NDCG@500 | Recall@500 | x RecBole NDCG@20 | x RecBole Recall@20 "
             "| epochs (best / run) | parameters | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in models:
        group = by_model[name]
        means = mean_metrics(group)
        cells = [spread([row["metrics"][key] for row in group]) for key in ("ndcg@20", "recall@20", "ndcg@500",
                                                                             "recall@500")]
        epochs = ", ".join(f"{row['best_epoch']} / {row['epochs']}" for row in group)
        minutes = sum(row["seconds"] for row in group) / len(group) / 60
        peer = peer_of(group)
        lines.append(f"| {name} | {' | '.join(cells)} | {means['ndcg@20'] / peer['ndcg@20']:.2f}x | "
                     f"{means['recall@20'] / peer['recall@20']:.2f}x | {epochs} | {group[0]['parameters']:,} | "
                     f"{minutes:.1f} |")
    goals = []
    for name in models[1:]:
        goal = by_model[name][0].get("goal")
        ratios = [row["metrics"]["ndcg@20"] / peer_by_seed[row["seed"]]["metrics"]["ndcg@20"] for row in by_model[name]]
        ratio = mean_metrics(by_model[name])["ndcg@20"] / peer_of(by_model[name])["ndcg@20"]
        each = f" (per seed {', '.join(f'{r:.2f}x' for r in ratios)})" if len(ratios) > 1 else ""
        if len(by_model[name]) < len(seeds):
            each += f" (seed {', '.join(str(row['seed']) for row in by_model[name])} only, against the peer's same seeds)"
        if "blend_weight" in by_model[name][0]:
            weights = ", ".join(f"{row['blend_weight']:g}" for row in by_model[name])
            priors = [row.get("model_prior") for row in by_model[name]]
            each += f", EASE weight {weights}" + (
                f", the model's popularity prior inside it {', '.join(f'{p:g}' for p in priors)}"
                if all(p is not None for p in priors) else "") + " (chosen on validation)"
        interval = paired_interval(by_model[name], peer_by_seed)
        if goal is None:
            verdict = "no goal" + (f" (95% interval {interval[0]:.2f}x-{interval[1]:.2f}x)" if interval else "")
            goals.append(f"- {name}: {ratio:.2f}x RecBole on NDCG@20{each}; {verdict}")
            continue
        if interval is None:
            verdict = (f"{'met' if ratio >= goal else 'NOT met'} on the means, no interval (a run kept no "
                       "per-playlist ranks: rerun without --skip-recbole)")
        else:
            low, high = interval
            verdict = ("met" if low >= goal else "NOT met" if high < goal else "undecided at this size") + \
                f" (95% interval {low:.2f}x-{high:.2f}x)"
        goals.append(f"- {name}: {ratio:.2f}x RecBole on NDCG@20{each}; goal >= {goal:.1f}x: {verdict}")
    notes = ["", "The interval is a paired bootstrap over the test playlists (each playlist's NDCG@20 averaged over "
             f"seeds, {RESAMPLES:,} resamples): the spread a test set of this size leaves in the ratio. A goal is met "
             "when the whole interval clears it, not met when it lies below, and undecided otherwise."]
    by_popularity = [] if popular is None else popularity_table(by_model, popular)
    return "\n".join(lines + [""] + goals + notes + by_popularity) + "\n"


RESAMPLES = 2000


def paired_interval(rows: list[dict], peer_by_seed: dict[int, dict], k: int = 20,
                    resamples: int = RESAMPLES, seed: int = 0,
                    among: np.ndarray | None = None) -> tuple[float, float] | None:
    """95% percentile interval of mean NDCG@k (model) / mean NDCG@k (peer) when the test playlists (those where
    `among` is True, or all) are resampled with replacement, both models on the same resampled playlists
    (per-playlist NDCG averaged over the seeds both ran); None when some run kept no per-playlist ranks or the two
    were scored on different playlists."""
    pairs = [(row, peer_by_seed[row["seed"]]) for row in rows if row["seed"] in peer_by_seed]
    model = per_playlist_ndcg([a for a, _ in pairs], k)
    peer = per_playlist_ndcg([b for _, b in pairs], k)
    if model is None or peer is None or len(model) != len(peer) or (among is not None and len(among) != len(model)):
        return None
    return bootstrap_ratio(model, peer, resamples, seed) if among is None else \
        bootstrap_ratio(model[among], peer[among], resamples, seed)


def bootstrap_ratio(model: np.ndarray, peer: np.ndarray, resamples: int = RESAMPLES,
                    seed: int = 0) -> tuple[float, float] | None:
    """95% percentile interval of model.mean() / peer.mean() over paired resamples of the playlists (per-playlist
    scores in the same order); None for no playlists."""
    if not len(model):
        return None
    rng = np.random.default_rng(seed)
    ratios = []
    for start in range(0, resamples, 200):  # in blocks: (resamples, playlists) indices can be large
        picks = rng.integers(0, len(model), size=(min(200, resamples - start), len(model)))
        ratios.append(model[picks].mean(1) / np.maximum(peer[picks].mean(1), 1e-12))
    low, high = np.percentile(np.concatenate(ratios), [2.5, 97.5])
    return float(low), float(high)


def per_playlist_ndcg(rows: list[dict], k: int = 20) -> np.ndarray | None:
    """(playlists,) each test playlist's NDCG@k averaged over the rows (seeds) given, in the split's order; None
    when a row kept no per-playlist ranks or the rows ranked different numbers of playlists."""
    import torch

    from mmrec.evaluate.metrics import ndcg_at_k

    ranks = [row.get("test_ranks") for row in rows]
    if not ranks or any(r is None for r in ranks) or len({len(r) for r in ranks}) != 1:
        return None
    return np.mean([ndcg_at_k(torch.tensor(r, dtype=torch.int64), k).numpy() for r in ranks], axis=0)


def popularity_table(by_model: dict[str, list[dict]], popular: np.ndarray, k: int = 20) -> list[str]:
    """Markdown lines: each model's NDCG@k on the test targets among the most played songs and in the long tail,
    and its ratio to the peer (the first model) on each with the paired 95% interval; models without per-playlist
    ranks are left out."""
    from mmrec.evaluate.metrics import POPULAR_SHARE

    scores = {name: per_playlist_ndcg(group, k) for name, group in by_model.items()}
    scores = {name: s for name, s in scores.items() if s is not None and len(s) == len(popular)}
    peer_name = next(iter(by_model))
    if peer_name not in scores or len(scores) < 2 or popular.all() or not popular.any():
        return []
    peer_rows = {row["seed"]: row for row in by_model[peer_name]}
    # Each model against the peer's runs of the same seeds (a row may lack some).
    peers = {name: per_playlist_ndcg([peer_rows[row["seed"]] for row in by_model[name] if row["seed"] in peer_rows], k)
             for name in scores}
    lines = ["", f"By target popularity (NDCG@{k}; popular: the target is one of the most played "
             f"{POPULAR_SHARE:.0%} of the songs by training plays, {int(popular.sum()):,} playlists; long tail: the "
             f"other {int((~popular).sum()):,}; x RecBole with its paired 95% interval):", "",
             "| model | popular | long tail | x RecBole popular | x RecBole long tail |", "|---|---|---|---|---|"]
    for name, s in scores.items():
        peer = peers[name] if peers[name] is not None else scores[peer_name]
        cells = [f"{s[popular].mean():.4f}", f"{s[~popular].mean():.4f}"]
        for band in (popular, ~popular):
            ratio = s[band].mean() / peer[band].mean() if peer[band].mean() > 0 else float("nan")
            interval = None if name == peer_name else bootstrap_ratio(s[band], peer[band])
            cells.append(f"{ratio:.2f}x" + (f" ({interval[0]:.2f}x-{interval[1]:.2f}x)" if interval else ""))
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def mean_metrics(group: list[dict]) -> dict:
    return {key: statistics.mean(row["metrics"][key] for row in group) for key in group[0]["metrics"]}


def spread(values: list[float]) -> str:
    """'.1234', or '.1234 +- .0056' over several seeds (sample standard deviation)."""
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} +- {statistics.stdev(values):.4f}"


if __name__ == "__main__":
    main()
