"""Training throughput: mmrec's BERT4Rec vs a reference in the style of the paper's code, and 1 vs 2 Ray Train
workers.

    .venv/bin/python benchmarks/train.py [--artifact-root artifacts] [--steps 12] [--skip-ray]

Both models train on the same windows of the prepared training split (run `make demo` first, or point
--artifact-root at any prepared and embedded root), at the paper's size: hidden 250, 2 layers, 5 heads,
max length 50, batch 128, mask probability 0.2, in this process with the same torch threads.
- reference (the paper's code): ID embeddings, an untied output layer (a separate Linear(hidden, N)), logits
  and softmax at every position (B x L x N), trained on the first 50 songs of each playlist;
- mmrec: content-initialised item representations, the output tied to them, logits only at masked positions,
  trained on the most recent 50 songs.
Goal: mmrec >= 3x the reference's sequences/s. The gap grows with the catalogue, since the reference pays the
full softmax at every position; --catalogue N also times both on N songs (the same windows, ids spread over a
larger table), to show the MPD-Large size (70,229 songs).
Then mmrec trains one epoch on 1 and on 2 Ray Train workers (the demo settings) and the sequences/s compare.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

PAPER = {"hidden": 250, "layers": 2, "heads": 5, "max_length": 50, "batch_size": 128, "mask_probability": 0.2}


class PaperStyleBERT4Rec(nn.Module):
    """The reference: ID embeddings, learned positions, a transformer, an untied output layer at every position."""

    def __init__(self, num_items: int, hidden: int, layers: int, heads: int, max_length: int, dropout: float = 0.2):
        super().__init__()
        self.items = nn.Embedding(num_items + 2, hidden, padding_idx=0)
        self.positions = nn.Embedding(max_length, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu", batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, num_items + 2)  # untied

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1])
        x = self.dropout(self.norm(self.items(tokens) + self.positions(positions)))
        logits = self.output(self.transformer(x, src_key_padding_mask=tokens == 0))  # (B, L, N + 2): every position
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=0)


def paper_batch(windows, max_length, mask_token, mask_probability, rng):
    """The reference's batches: the first max_length songs, right-padded, random masking."""
    tokens = np.zeros((len(windows), max_length), np.int64)
    for row, window in enumerate(windows):
        head = window[:max_length]
        tokens[row, :len(head)] = head
    masked = (rng.random(tokens.shape) < mask_probability) & (tokens > 0)
    labels = np.where(masked, tokens, 0)
    return torch.from_numpy(np.where(masked, mask_token, tokens)), torch.from_numpy(labels)


def sequences_per_second(step, batches: int, batch_size: int) -> float:
    step()  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        step()
    return batches * batch_size / (time.perf_counter() - started)


def single_process(root: str, steps: int, catalogue: int | None) -> dict[str, float]:
    from mmrec.layout import read_content, read_items, read_split
    from mmrec.train.config import TrainConfig
    from mmrec.train.loop import build_model, model_config
    from mmrec.train.sequences import cloze_batch, epoch_batches, training_windows

    items = read_items(root)
    num_items = catalogue or items.num_rows
    histories = read_split(root, "train").histories
    if catalogue:  # the same playlists over a larger catalogue: ids spread by a fixed permutation
        mapping = np.random.default_rng(0).permutation(np.arange(1, catalogue + 1))[:items.num_rows + 1]
        mapping[0] = 0
        histories = [mapping[h] for h in histories]
    modalities = ("audio", "lyrics", "album_art", "artist_bio")
    contents = {}
    for m in modalities:
        table = read_content(root, m).for_items(items.num_rows, m)
        if catalogue:
            table = np.resize(table, (num_items + 1, table.shape[1]))
        contents[m] = table
    cfg = TrainConfig(**{k: v for k, v in PAPER.items()}, modalities=modalities)
    config = model_config(cfg, num_items, {m: t.shape[1] for m, t in contents.items()})
    ours = build_model(config, contents, seed=0).train()
    reference = PaperStyleBERT4Rec(num_items, PAPER["hidden"], PAPER["layers"], PAPER["heads"],
                                   PAPER["max_length"]).train()
    rng = np.random.default_rng(0)
    recent = training_windows(histories, PAPER["max_length"])
    ordering = epoch_batches(np.array([len(w) for w in recent]), PAPER["batch_size"], rng)  # as train does
    ordered = [h for h in histories if len(h) >= 2]
    b = PAPER["batch_size"]

    def make_step(model, batch):
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        position = [0]

        def step():
            start = position[0] % max(1, len(recent) - b)
            position[0] += b
            tokens, labels = batch(start)
            loss = model(tokens, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return step

    def ours_batch(start):
        step = ordering[(start // b) % len(ordering)][0]
        tokens, labels = cloze_batch([recent[i] for i in step], PAPER["max_length"], config.mask_token,
                                     PAPER["mask_probability"], cfg.last_only_share, rng)
        return torch.from_numpy(tokens), torch.from_numpy(labels)

    def reference_batch(start):
        return paper_batch(ordered[start:start + b], PAPER["max_length"], num_items + 1, PAPER["mask_probability"], rng)

    return {"reference": sequences_per_second(make_step(reference, reference_batch), steps, b),
            "mmrec": sequences_per_second(make_step(ours, ours_batch), steps, b), "songs": num_items}


def ray_workers(root: str, workers: int) -> float:
    """Sequences/s of one mmrec epoch on `workers` Ray Train workers (demo settings), from the run's metrics."""
    from mmrec.config import load_config
    from mmrec.train import run as train

    config = load_config("configs/demo.yaml", {
        "artifact_root": root, "train.workers": workers, "train.epochs": 1, "train.register_model": False,
        "train.run_name": f"benchmark-{workers}-workers-{int(time.time())}", "train.valid_playlists": 1})
    outputs = train.run(config)
    import json

    with open(os.path.join(outputs["checkpoint"], "state.json")) as f:
        return json.load(f)["history"][-1]["windows_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact-root", default="artifacts")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per model")
    parser.add_argument("--catalogue", type=int, default=70229, help="also time on this many songs (0 = skip)")
    parser.add_argument("--skip-ray", action="store_true", help="skip the 1 vs 2 Ray Train workers comparison")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch threads: {torch.get_num_threads()}; paper size: {PAPER}")
    rows = [single_process(args.artifact_root, args.steps, None)]
    if args.catalogue:
        rows.append(single_process(args.artifact_root, args.steps, args.catalogue))
    print(f"{'songs':>8}  {'reference seq/s':>16}  {'mmrec seq/s':>12}  {'ratio':>6}")
    for row in rows:
        print(f"{row['songs']:>8}  {row['reference']:>16.1f}  {row['mmrec']:>12.1f}  {row['mmrec'] / row['reference']:>5.2f}x")
    if not args.skip_ray:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        one, two = ray_workers(args.artifact_root, 1), ray_workers(args.artifact_root, 2)
        ray.shutdown()
        print(f"Ray Train, one epoch: 1 worker {one:.0f} seq/s, 2 workers {two:.0f} seq/s ({two / one:.2f}x)")


if __name__ == "__main__":
    main()
