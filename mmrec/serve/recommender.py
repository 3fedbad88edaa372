"""The serving core, free of Ray and HTTP: a registered model answering playlist-continuation requests.

`Catalogue` knows the songs (the model's items, then its cold songs: songs with content but no training plays)
and finds them by URI, id or name. `Recommender` scores a batch of requests in one model call: each request's
known songs, newest last, become a left-padded history; songs the model cannot use as input are listed back;
cold songs are scored from their content like any other. Serve's deployments (serve/app.py) only wrap these.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pyarrow as pa
import torch

from mmrec import artifacts
from mmrec.artifacts import ArtifactError, Location
from mmrec.models.registry import RegisteredModel

UNKNOWN = "not a song of this model"
COLD_INPUT = "a cold song (no training plays): recommendable, but not usable as input"
METADATA = ("track_name", "artist_name", "album_name", "album_uri")


@dataclass(frozen=True)
class Request:
    tracks: tuple[str | int, ...]  # track URIs or item ids, oldest first
    k: int = 20
    exclude_seen: bool = True


@dataclass
class Answer:
    recommendations: list[dict]
    used: int  # songs of the request the model read
    unknown: list[dict] = field(default_factory=list)  # {track, reason}

    def to_dict(self) -> dict:
        return {"recommendations": self.recommendations, "used": self.used, "unknown": self.unknown}


class Catalogue:
    """Songs by column of the score matrix: 1..N the model's items, N + 1.. its cold songs (column 0 = padding)."""

    def __init__(self, items: pa.Table, cold_uris: list[str]):
        order = np.argsort(items["item_idx"].to_numpy())
        items = items.take(order)
        if not np.array_equal(items["item_idx"].to_numpy(), np.arange(1, items.num_rows + 1)):
            raise ArtifactError("items.parquet: item_idx must be 1..N")
        self.num_items = items.num_rows
        self.uris = [""] + items["track_uri"].to_pylist() + list(cold_uris)
        self.column = {uri: i for i, uri in enumerate(self.uris) if uri}
        cold = [None] * len(cold_uris)
        self.metadata = {name: [None] + (items[name].to_pylist() if name in items.column_names
                                         else [None] * self.num_items) + cold for name in METADATA}
        counts = items["count"].to_numpy() if "count" in items.column_names else np.zeros(self.num_items)
        self.popularity = np.concatenate([[0], counts, np.zeros(len(cold_uris))])

    def __len__(self) -> int:
        return len(self.uris) - 1

    def resolve(self, track: str | int) -> int | None:
        """The column of a track URI or an item id, or None."""
        if isinstance(track, (int, np.integer)) and not isinstance(track, bool):
            return int(track) if 1 <= track <= self.num_items else None
        return self.column.get(track)

    def describe(self, column: int, score: float | None = None) -> dict:
        song = {"track_uri": self.uris[column], "item_id": column if column <= self.num_items else None,
                "cold": column > self.num_items,
                **{name: self.metadata[name][column] for name in METADATA}}
        if score is not None:
            song["score"] = round(float(score), 6)
        return song

    @cached_property
    def words(self) -> "WordIndex":
        """The search index, built on first use (the ingress builds it at start-up; model replicas never do)."""
        names, artists = self.metadata["track_name"], self.metadata["artist_name"]
        columns = np.arange(len(self.uris))
        return WordIndex([" ".join(filter(None, (names[i], artists[i]))) for i in columns],
                         order=np.lexsort((columns, -self.popularity)))  # most played first

    def search(self, query: str, limit: int) -> list[dict]:
        """Songs whose track or artist name has a word starting with each word of the query, the most played
        first (what a search-as-you-type box needs: "blue har" finds "Blue Harbor")."""
        return [self.describe(int(i)) for i in self.words.matching(query, limit)]


class WordIndex:
    """Search as you type over millions of songs: the rows with a word starting with each word of the query, in a
    fixed order of preference (most played first), the first `limit` of them. A sorted vocabulary turns a prefix
    into a range of posting lists (of ranks in that order); prefixes with short lists are intersected as arrays,
    long ones ("b") are checked on the few candidates left or, when every prefix is long, on the rows in order
    until `limit` match, which come early since such prefixes match many rows. Nothing scans 2.26M names."""

    SHORT = 50_000  # postings up to this long are merged and intersected as arrays

    def __init__(self, texts: list[str], order: np.ndarray | None = None):
        self.order = np.arange(len(texts)) if order is None else np.asarray(order, dtype=np.int64)  # rank -> row
        self.texts = [" " + " ".join(texts[row].lower().split()) for row in self.order]  # by rank; " " starts a word
        postings: dict[str, list[int]] = {}
        for rank, text in enumerate(self.texts):
            for word in set(text.split()):
                postings.setdefault(word, []).append(rank)
        self.vocabulary = sorted(postings)
        self.postings = [np.asarray(postings[w], dtype=np.int64) for w in self.vocabulary]
        self.ends = np.cumsum([0] + [len(p) for p in self.postings])  # postings in vocabulary[a:b]: ends[b] - ends[a]

    def matching(self, query: str, limit: int | None = None) -> np.ndarray:
        """Rows, in the index's order, with a word starting with each word of the query (at most `limit`)."""
        limit = len(self.order) if limit is None else limit
        spans = []
        for prefix in dict.fromkeys(query.lower().split()):
            start = bisect.bisect_left(self.vocabulary, prefix)
            stop = bisect.bisect_left(self.vocabulary, prefix + "\U0010ffff", lo=start)
            if stop == start:
                return np.empty(0, np.int64)
            spans.append((self.ends[stop] - self.ends[start], prefix, start, stop))
        if not spans:
            return np.empty(0, np.int64)
        candidates, checks = None, []
        for size, prefix, start, stop in sorted(spans):
            if size <= self.SHORT:
                ranks = np.unique(np.concatenate(self.postings[start:stop]))
                candidates = ranks if candidates is None else np.intersect1d(candidates, ranks, assume_unique=True)
            else:
                checks.append(" " + prefix)
        pool = range(len(self.texts)) if candidates is None else candidates.tolist()
        hits = []
        for rank in pool:
            if all(check in self.texts[rank] for check in checks):
                hits.append(rank)
                if len(hits) == limit:
                    break
        return self.order[np.asarray(hits, dtype=np.int64)]


def top_k(scores: torch.Tensor, k: int) -> list[tuple[int, float]]:
    """The k best (column, score) of one row (columns,), ties to the lower column: the more played song, since
    item ids go by descending count, and trained songs before cold ones. torch.topk orders ties arbitrarily, so
    without this a request could get a different list alone than in a batch."""
    k = min(k, len(scores) - 1)
    threshold = scores.topk(k).values[-1]
    columns = torch.nonzero(scores >= threshold).squeeze(1)  # the top k and whatever ties the k-th
    order = sorted(zip(columns.tolist(), scores[columns].tolist()), key=lambda pair: (-pair[1], pair[0]))
    return order[:k]


def load_catalogue(model: Location) -> Catalogue:
    """The songs of a registered model without loading its weights (what the HTTP ingress needs for search)."""
    config = artifacts.read_json(model.join("config.json"))
    items = artifacts.read_table(model.join("items.parquet"))
    songs = artifacts.read_table(model.join("songs.parquet"), columns=["track_uri", "item_idx"])
    cold = songs.filter(songs["item_idx"].is_null())["track_uri"].to_pylist() if config.get("modalities") else []
    return Catalogue(items, cold)


class Recommender:
    """A registered model behind `recommend(requests)`; one forward pass per batch of requests."""

    def __init__(self, registered: RegisteredModel, device: str = "cpu"):
        self.registered = registered
        self.model = registered.model.to(device).eval()
        self.hybrid = registered.hybrid  # the blend with EASE validation chose at registration, if any
        self.device = torch.device(device)
        cold = registered.cold_songs
        self.cold_contents = None
        if cold.num_rows and registered.config.modalities:  # an ID-only model cannot score songs it never saw
            self.cold_contents = [t.to(self.device) for t in registered.stream_contents(cold)]
        else:
            cold = cold.slice(0, 0)
        self.catalogue = Catalogue(registered.items, cold["track_uri"].to_pylist())
        with torch.no_grad():  # the item tables are fixed: computed once, not per request
            self.tables = self.model.stream_tables(self.cold_contents)
            table = self.model.item_table(tables=self.tables)  # (N + 1 [+ C], H)
        self._unit_table = torch.nn.functional.normalize(table, dim=1)  # for /similar

    @property
    def max_history(self) -> int | None:
        """The newest songs of a request the scorer reads: the model's window, or all of them with the hybrid (EASE
        reads the whole history; the model still its newest max_length - 1)."""
        return None if self.hybrid is not None else self.model.config.max_length - 1

    def recommend(self, requests: list[Request]) -> list[Answer]:
        histories, unknown = [], []
        for request in requests:
            columns, problems = [], []
            for track in request.tracks:
                column = self.catalogue.resolve(track)
                if column is None:
                    problems.append({"track": track, "reason": UNKNOWN})
                elif column > self.catalogue.num_items:
                    problems.append({"track": track, "reason": COLD_INPUT})
                else:
                    columns.append(column)
            histories.append(columns)
            unknown.append(problems)
        scores = self._score(histories)  # (B, N + 1 + C)
        for row, request in enumerate(requests):
            if request.exclude_seen:
                seen = [self.catalogue.resolve(t) for t in request.tracks]
                scores[row, [c for c in seen if c is not None]] = float("-inf")
        answers = []
        for row, request in enumerate(requests):
            pairs = [(c, s) for c, s in top_k(scores[row], request.k) if s != float("-inf")]
            answers.append(Answer([self.catalogue.describe(c, s) for c, s in pairs],
                                  used=len(histories[row][-self.max_history:] if self.max_history else histories[row]),
                                  unknown=unknown[row]))
        return answers

    def _score(self, histories: list[list[int]]) -> torch.Tensor:
        """Scores (B, columns) of left-padded histories (their newest max_length - 1 songs, or all of them for the
        hybrid), blended with EASE when the model has a hybrid."""
        longest = max(len(h) for h in histories)
        length = max(1, min(self.max_history, longest) if self.max_history else longest)
        padded = np.zeros((len(histories), length), dtype=np.int64)
        for row, history in enumerate(histories):
            recent = history[-length:]
            if recent:
                padded[row, length - len(recent):] = recent
        padded = torch.from_numpy(padded).to(self.device)
        scores = self.model.score(padded, self.cold_contents, self.tables)
        if self.hybrid is not None:
            scores = self.hybrid.blend(scores, padded)
        return scores.cpu()

    def similar(self, track: str | int, k: int) -> list[dict] | None:
        """Songs nearest to a song in the model's item space (cosine), or None if the song is unknown."""
        column = self.catalogue.resolve(track)
        if column is None:
            return None
        with torch.no_grad():
            similarity = self._unit_table @ self._unit_table[column]
        similarity[[0, column]] = float("-inf")
        values, columns = similarity.topk(min(k, len(self.catalogue) - 1))
        return [self.catalogue.describe(c, s) for c, s in zip(columns.tolist(), values.tolist())]
