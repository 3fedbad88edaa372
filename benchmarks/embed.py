"""Embedding throughput: the text model through embed's Ray Data actor pool vs called directly, and the
album-art VAE's images/s.

    .venv/bin/python benchmarks/embed.py [--texts 2000] [--actors 2]

Texts are cleaned demo lyrics (generated here, so the script needs no prepared corpus). Both text paths are
timed end to end, model loading included: one direct SentenceEmbedder in this process (torch using every
core), and `mmrec.embed.run._embed_texts` on a fresh local Ray (the pool embed uses). Goal: the pool within
20% of the direct call on the same machine.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def lyrics_texts(n: int) -> list[str]:
    from mmrec.demo.config import DemoDataConfig
    from mmrec.demo.corpus import make_catalogue
    from mmrec.demo.modalities import lyrics_records
    from mmrec.embed.text import clean_lyrics

    cfg = DemoDataConfig(songs=max(2 * n, 1000))
    records = lyrics_records(make_catalogue(cfg), np.arange(cfg.songs), cfg)[:n]
    return [" ".join(clean_lyrics(r["lyrics"])) for r in records]


def direct(texts: list[str], model: str, batch_size: int) -> float:
    from mmrec.embed.text import SentenceEmbedder

    started = time.time()
    SentenceEmbedder(model, batch_size=batch_size).encode(texts)
    return time.time() - started


def actor_pool(texts: list[str], model: str, batch_size: int, actors: int) -> float:
    import ray

    from mmrec.embed.config import EmbedConfig
    from mmrec.embed.run import _embed_texts

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        cfg = EmbedConfig(text_model=model, batch_size=batch_size, actors=actors)
        started = time.time()
        vectors = _embed_texts(cfg, [str(i) for i in range(len(texts))], texts)
        assert vectors.shape[0] == len(texts)
        return time.time() - started
    finally:
        ray.shutdown()


def album_vae(images: int, width: int) -> tuple[float, float]:
    from mmrec.embed.vae import AlbumArtVAE, embed_with_vae, train_vae

    data = np.random.default_rng(0).random((images, 3, 128, 128), dtype=np.float32)
    model = AlbumArtVAE(latent_dim=64, width=width)
    started = time.time()
    train_vae(model, data, epochs=1, batch_size=64, learning_rate=1e-3, beta=1.0, seed=0)
    train_rate = images / (time.time() - started)
    started = time.time()
    embed_with_vae(model, data, batch_size=128)
    return train_rate, images / (time.time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--art-width", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    texts = lyrics_texts(args.texts)
    direct_s = direct(texts, args.model, args.batch_size)
    pool_s = actor_pool(texts, args.model, args.batch_size, args.actors)
    train_rate, embed_rate = album_vae(args.images, args.art_width)
    print(f"\n{os.cpu_count()} cores, {len(texts)} texts, model {args.model}")
    print("| text path | seconds (model load included) | texts/s | vs direct |")
    print("|---|---|---|---|")
    print(f"| direct, one process | {direct_s:.1f} | {len(texts) / direct_s:.0f} | 1.00x |")
    print(f"| Ray Data actor pool ({args.actors} actors) | {pool_s:.1f} | {len(texts) / pool_s:.0f} | {direct_s / pool_s:.2f}x |")
    print(f"\nalbum-art VAE (width {args.art_width}, 128x128): train {train_rate:.0f} images/s, embed {embed_rate:.0f} images/s")


if __name__ == "__main__":
    main()
