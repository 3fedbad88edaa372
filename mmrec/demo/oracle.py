"""The demo's oracle row: the generator's hidden genres times popularity, with no training.

It reads hidden/song_genres.csv, which no pipeline stage may read, and exists only to check the demo corpus: a
scorer that knows each song's hidden genre and ranks songs by P(genre | the history's genres) x P(song | genre)
(training plays). If a trained model does no better than this, the demo's content is an oracle of its generator
rather than a test of what the model learns from co-occurrence.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow.csv as pacsv
import torch

from mmrec import artifacts
from mmrec.artifacts import ArtifactError


def read_song_genres(corpus_root: str, track_uris: list[str]) -> np.ndarray:
    """(N,) hidden genre of each catalogue song (track_uris in item order), from <corpus>/hidden/song_genres.csv."""
    loc = artifacts.resolve(corpus_root).join("hidden", "song_genres.csv")
    if not loc.exists():
        raise ArtifactError(f"{loc.uri}: not found; the oracle row needs the demo corpus's hidden genres "
                            "(real corpora have none: drop the oracle cell from the grid)")
    table = pacsv.read_csv(io.BytesIO(artifacts.read_bytes(loc)))
    genre_of = dict(zip(table["track_uri"].to_pylist(), table["genre"].to_pylist()))
    missing = [uri for uri in track_uris if uri not in genre_of]
    if missing:
        raise ArtifactError(f"{loc.uri}: {len(missing)} catalogue songs have no hidden genre (e.g. {missing[0]}); "
                            "was the split prepared from another corpus?")
    return np.array([genre_of[uri] for uri in track_uris], np.int64)


class GenrePopularityOracle:
    """score(histories (B, T)) -> (B, N + 1) = share of the history in s's genre x s's share of its genre's plays
    (+ a popularity term a million times smaller that orders songs of genres the history never touched)."""

    def __init__(self, song_genres: np.ndarray, train_counts: np.ndarray):  # both (N,), items 1..N
        genres = int(song_genres.max()) + 1
        plays = train_counts.astype(np.float64) + 1.0
        genre_plays = np.bincount(song_genres, weights=plays, minlength=genres)
        self.genre_of = torch.from_numpy(np.concatenate([[genres], song_genres]))  # padding -> an extra column
        self.genres = genres
        within = plays / genre_plays[song_genres]
        self.within = torch.from_numpy(np.concatenate([[0.0], within]).astype(np.float32))  # (N + 1,)
        self.tie_break = torch.from_numpy(np.concatenate([[0.0], plays / plays.sum() * 1e-6]).astype(np.float32))

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        genres = self.genre_of[histories]  # (B, T); padding -> column `genres`
        counts = torch.zeros(len(histories), self.genres + 1).scatter_add_(1, genres, torch.ones(genres.shape))
        share = counts[:, :-1] / counts[:, :-1].sum(1, keepdim=True).clamp(min=1)  # (B, G)
        scores = share[:, self.genre_of[1:]] * self.within[1:] + self.tie_break[1:]  # (B, N)
        return torch.cat([torch.full((len(histories), 1), float("-inf")), scores], dim=1)
