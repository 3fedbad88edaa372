"""What grows with the catalogue, at catalogue sizes up to the full MPD's: (1) sampled-softmax training steps,
rows read only (what BERT4Rec.forward does) vs the whole item table (what it did before: every song's content
projected on every step); (2) song search, the serve catalogue's word-prefix index vs a scan of every name.

    .venv/bin/python benchmarks/catalogue.py [--songs 10000 100000 1000000] [--steps 5] [--search-songs 2262292]

The same model (all four modalities concatenated, 208 content dims as the demo's fused table, hidden 64, 2
layers), the same batches (128 windows of 50 songs, 20% masked, drawn from the most played 5,000 songs as
playlists mostly are) and the same 1,024 negatives per step; forward, backward and an AdamW step (as training),
one process on the CPU. What stays proportional to the catalogue in both: the optimizer step over the whole
content and ID tables (their gradients are dense), so neither is flat; the difference is the projection of
every song's content, forward and backward, on every step.
Search: demo-like names ("<word> <word> <n>" tracks by "<word> <word>" artists), 200 queries of 1-2 word
prefixes as a person types them, 20 answers each; the scan is the previous code (every query word a substring
of every name, then the most played 20).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig

CONTENT_DIMS = 208  # the demo's fused table: 4 modalities x 64 dims, less PCA padding


def step_seconds(model: BERT4Rec, tokens: torch.Tensor, labels: torch.Tensor, whole_table: bool, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)  # as train/run.py
    times = []
    for _ in range(steps + 1):  # the first step warms up
        started = time.perf_counter()
        if whole_table:  # the previous path: the full (N + 1, H) table, then the target and negative rows
            masked = labels > 0
            targets = labels[masked] - 1
            negatives = model.draw_negatives()
            h, table = model.encode(tokens, outputs=masked)
            loss = model._sampled_softmax(h, table[1:][targets], table[1:][negatives], targets, negatives)
        else:
            loss = model(tokens, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    return sum(times[1:]) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--songs", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--search-songs", type=int, default=2_262_292, help="songs for the search table")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    rows = ["| songs | whole table s/step | rows read s/step | speed-up |", "|---|---|---|---|"]
    for songs in args.songs:
        config = BERT4RecConfig(num_items=songs, hidden=64, layers=2, heads=2, max_length=50, dropout=0.1,
                                modalities=("fused",), content_dims=(CONTENT_DIMS,), loss="sampled", negatives=1024)
        content = torch.randn(songs + 1, CONTENT_DIMS, generator=generator)
        model = BERT4Rec(config, {"fused": content}).train()
        tokens = torch.randint(1, min(songs, 5000) + 1, (128, 50), generator=generator)
        masked = torch.rand(128, 50, generator=generator) < 0.2
        labels = torch.where(masked, tokens, 0)
        tokens = torch.where(masked, config.mask_token, tokens)
        whole = step_seconds(model, tokens, labels, True, args.steps)
        read = step_seconds(model, tokens, labels, False, args.steps)
        rows.append(f"| {songs:,} | {whole:.3f} | {read:.3f} | {whole / read:.1f}x |")
        print(rows[-1], flush=True)
    print(f"\ntorch threads {torch.get_num_threads()}\n" + "\n".join(rows))
    print("\n" + "\n".join(search_rows(args.search_songs)))


def search_rows(songs: int) -> list[str]:
    from mmrec.serve.recommender import WordIndex

    rng = np.random.default_rng(0)
    vocabulary = [f"{a}{b}{c}" for a in "bcdfghklmnprstvz" for b in "aeiou" for c in ("n", "r", "sta", "lo", "ve")]
    words = rng.choice(vocabulary, size=(songs, 4))
    texts = [f"{w[0]} {w[1]} {i} {w[2]} {w[3]}" for i, w in enumerate(words)]
    queries = [" ".join(q) for q in zip(rng.choice(vocabulary, 200), rng.choice(["", "b", "ma", "ro"], 200))]
    queries = [q.strip()[:-1] if len(q) > 3 else q for q in queries]  # half-typed words
    started = time.perf_counter()
    index = WordIndex(texts)
    build = time.perf_counter() - started
    lowered = [t.lower() for t in texts]
    started = time.perf_counter()
    for q in queries[:20]:  # the scan is slow: 20 queries are enough to time it
        parts = q.lower().split()
        [i for i, t in enumerate(lowered) if all(p in t for p in parts)]
    scan = (time.perf_counter() - started) / 20
    started = time.perf_counter()
    for q in queries:
        index.matching(q, 20)  # what GET /songs/search asks for by default
    indexed = (time.perf_counter() - started) / len(queries)
    return [f"search over {songs:,} songs: index built once in {build:.1f} s", "",
            "| per query | scan of every name | word-prefix index | speed-up |", "|---|---|---|---|",
            f"| ms | {scan * 1000:.1f} | {indexed * 1000:.2f} | {scan / indexed:.0f}x |"]


if __name__ == "__main__":
    main()
