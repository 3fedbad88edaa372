"""The RecBole side of benchmarks/peer.py; runs inside the RecBole virtual environment that peer.py makes.

    <venv>/bin/python benchmarks/peer_recbole.py FOLDER --out results.json [--epochs 300 --patience 10 --seed 0]

FOLDER holds what peer.py wrote: RecBole benchmark files (mmrec/mmrec.{train,valid,test}.inter: pre-split, so
RecBole cannot move validation songs into training) and splits.json (each valid/test playlist's whole history and
target, as mmrec's item_idx). RecBole's SASRec (its own defaults but the shared sizes: hidden 64, 2 layers, 2
heads, max length 50, full softmax) trains to early stopping on NDCG@20 of the validation targets. Both the
validation that steers early stopping and the final test scoring exclude each playlist's whole history, as mmrec
does (RecBole's sequential evaluation excludes nothing), and the test metrics come from mmrec's own metric code.
Imports only RecBole, torch, numpy and mmrec.evaluate.metrics (numpy + torch).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmrec.evaluate.metrics import MetricTotals, evaluate_scorer  # noqa: E402  (numpy and torch only)

MAX_LENGTH = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--checkpoint", default="",
                        help="score this saved RecBole model on the test targets instead of training one (re-scoring a "
                        "kept run: --out gets its metrics and per-playlist ranks)")
    parser.add_argument("--save-scores", default="",
                        help="also write the model's scores of every valid and test playlist (float32, by mmrec "
                        "item_idx, history not excluded) to this .npz, for blending on mmrec's side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # RecBole 1.2.1 saves whole config objects in its checkpoints; torch >= 2.6 refuses them by default. These are
    # the files this process has just written.
    torch.load = functools.partial(torch.load, weights_only=False)

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    folder = Path(args.folder)
    splits = json.loads((folder / "splits.json").read_text())
    config = Config(model="SASRec", dataset="mmrec", config_dict={
        "data_path": str(folder), "checkpoint_dir": str(folder / "saved"), "benchmark_filename": ["train", "valid", "test"],
        "USER_ID_FIELD": "session_id", "ITEM_ID_FIELD": "item_id", "LIST_SUFFIX": "_list",
        "load_col": {"inter": ["session_id", "item_id_list", "item_id"]}, "alias_of_item_id": ["item_id_list"],
        "MAX_ITEM_LIST_LENGTH": MAX_LENGTH, "train_neg_sample_args": None, "loss_type": "CE",
        "hidden_size": args.hidden, "n_layers": args.layers, "n_heads": args.heads, "inner_size": 4 * args.hidden,
        "epochs": args.epochs, "stopping_step": args.patience, "train_batch_size": args.batch_size,
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"], "topk": [20], "valid_metric": "NDCG@20", "eval_batch_size": 1024,
        "use_gpu": torch.cuda.is_available(), "seed": args.seed, "reproducibility": True, "show_progress": False,
        "state": "WARNING",
    })
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    token_to_id = dataset.field2token_id["item_id"]
    num_items = max(int(t) for t in token_to_id if t != "[PAD]")
    recbole_id = np.zeros(num_items + 1, np.int64)  # mmrec item_idx -> RecBole's id (0 = [PAD] / never seen)
    for token, index in token_to_id.items():
        if token != "[PAD]":
            recbole_id[int(token)] = index
    recbole_id_t = torch.from_numpy(recbole_id)

    model = SASRec(config, train_data.dataset).to(config["device"])
    parameters = sum(p.numel() for p in model.parameters())
    valid_history = _history_index(splits["valid"], recbole_id)

    class HistoryExcludingTrainer(Trainer):
        """RecBole's trainer, with each validation playlist's whole history excluded from its ranking."""

        def _full_sort_batch_eval(self, batched_data):
            interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
            sessions = interaction["session_id"].cpu().numpy()
            for row, session in enumerate(sessions):
                seen = valid_history.get(int(dataset.id2token("session_id", session)))
                if seen is not None:
                    scores[row, seen] = -np.inf
            return interaction, scores, positive_u, positive_i

    logging.getLogger().setLevel(logging.WARNING)
    trainer = HistoryExcludingTrainer(config, model)
    started = time.time()
    epochs_seen = []
    original_valid_epoch = trainer._valid_epoch

    def valid_epoch(*a, **k):  # progress: one line per epoch
        score, result = original_valid_epoch(*a, **k)
        epochs_seen.append(float(score))
        print(f"recbole epoch {len(epochs_seen)}: valid NDCG@20 {score:.4f} ({time.time() - started:.0f} s)",
              flush=True)
        return score, result

    trainer._valid_epoch = valid_epoch
    if args.checkpoint:
        best_valid = None  # not validated here: the kept result of its training run has it
    else:
        best_valid, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    checkpoint = torch.load(args.checkpoint or trainer.saved_model_file, map_location=config["device"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()

    def score(histories: torch.Tensor) -> torch.Tensor:
        """mmrec's scorer contract: left-padded item_idx (B, T) -> (B, N + 1) scores in item_idx columns."""
        recent = histories[:, -MAX_LENGTH:]
        lengths = (recent > 0).sum(1)
        ids = recbole_id_t[recent]
        aligned = torch.zeros_like(ids)  # RecBole's sequences are left-aligned, padding at the end
        for row in range(len(ids)):
            aligned[row, :lengths[row]] = ids[row, recent.shape[1] - lengths[row]:]
        from recbole.data.interaction import Interaction

        inter = Interaction({"item_id_list": aligned, "item_length": lengths}).to(config["device"])
        recbole_scores = model.full_sort_predict(inter).cpu()  # (B, RecBole items)
        out = recbole_scores[:, recbole_id_t]  # (B, N + 1) by item_idx
        out[:, recbole_id_t == 0] = float("-inf")  # padding (and songs RecBole never saw)
        return out

    test = splits["test"]
    histories = [np.array(h, np.int64) for h in test["histories"]]
    totals = evaluate_scorer(score, histories, np.array(test["targets"], np.int64), (20, 500), batch_size=256,
                             totals=MetricTotals((20, 500), keep_ranks=True))
    result = {"model": "RecBole 1.2.1 SASRec", "metrics": totals.means(), "playlists": totals.count,
              "test_ranks": totals.ranks().tolist(),  # splits.json's test order: paired tests against mmrec
              "checkpoint": str(args.checkpoint or trainer.saved_model_file),
              "best_valid_ndcg@20": None if best_valid is None else float(best_valid), "epochs": len(epochs_seen),
              "best_epoch": int(np.argmax(epochs_seen)) + 1 if epochs_seen else 0, "parameters": int(parameters),
              "seconds": round(time.time() - started, 1),
              "settings": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads, "max_length": MAX_LENGTH,
                           "batch_size": args.batch_size, "dropout": "0.5 hidden, 0.5 attention (RecBole defaults)",
                           "learning_rate": config["learning_rate"], "patience": args.patience, "seed": args.seed}}
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result["metrics"]), flush=True)
    if args.save_scores:
        kept = {}
        with torch.no_grad():
            for name in ("valid", "test"):
                histories = [np.array(h, np.int64) for h in splits[name]["histories"]]
                kept[name] = np.concatenate([score(torch.from_numpy(left_pad(histories[i:i + 256]))).numpy()
                                             for i in range(0, len(histories), 256)]).astype(np.float32)
        with open(args.save_scores + ".partial", "wb") as file:
            np.savez(file, **kept)
        Path(args.save_scores + ".partial").replace(args.save_scores)


def left_pad(histories: list[np.ndarray]) -> np.ndarray:
    """Left-padded (B, longest) item_idx, 0 = padding: the batches mmrec's evaluation gives a scorer."""
    padded = np.zeros((len(histories), max(1, max(len(h) for h in histories))), np.int64)
    for row, history in enumerate(histories):
        if len(history):
            padded[row, -len(history):] = history
    return padded


def _history_index(split: dict, recbole_id: np.ndarray) -> dict[int, torch.Tensor]:
    """pid -> the RecBole ids of its whole history (what is excluded from its ranking)."""
    return {int(pid): torch.from_numpy(recbole_id[np.array(history, np.int64)])
            for pid, history in zip(split["pids"], split["histories"])}


if __name__ == "__main__":
    main()
