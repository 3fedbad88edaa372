"""Spotify audio features: reading any of the usual shapes, checking ranges, and scaling for the VAE.

Scaling, and why: the seven [0, 1] features stay as they are (already comparable); `key` is a pitch class on a
circle (B is next to C), so it becomes (sin, cos) of its angle, and Spotify's -1 ("no key") becomes (0, 0);
`mode` is binary; loudness (dB) and tempo (BPM) are standardised, as their raw scales would dominate the
squared reconstruction error.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mmrec.artifacts import ArtifactError

AUDIO_FEATURES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness",
    "acousticness", "instrumentalness", "liveness", "valence", "tempo",
)
UNIT_FEATURES = ("danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness", "valence")
RANGES = {
    **{f: (0.0, 1.0) for f in UNIT_FEATURES},
    "key": (-1, 11),
    "mode": (0, 1),
    "loudness": (-60.0, 5.0),  # dB; Spotify reports up to a few dB above 0 for some masters
    "tempo": (0.0, 300.0),
}
SCALED_DIM = len(UNIT_FEATURES) + 2 + 1 + 2  # units, key (sin, cos), mode, loudness, tempo


def audio_keys(table: pa.Table, where: str) -> list[str]:
    """Track URIs of an audio-features table keyed by `uri` or by bare Spotify `id`."""
    if "uri" in table.column_names:
        return [str(u) if u is not None else "" for u in table["uri"].to_pylist()]
    if "id" in table.column_names:
        return [f"spotify:track:{i}" if i else "" for i in table["id"].to_pylist()]
    raise ArtifactError(f"{where}: needs a `uri` or an `id` column (has: {', '.join(table.column_names)})")


def check_audio(table: pa.Table, where: str) -> tuple[np.ndarray, np.ndarray, Counter]:
    """(features (n, 11) float64, valid (n,), problems): a row with a missing, NaN or out-of-range feature is
    invalid (treated as a missing modality), and counted by feature."""
    missing = [f for f in AUDIO_FEATURES if f not in table.column_names]
    if missing:
        raise ArtifactError(f"{where}: missing audio feature column(s): {', '.join(missing)}")
    values = np.column_stack([
        np.asarray(pa.compute.cast(table[f], pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
        if pa.types.is_floating(table[f].type) or pa.types.is_integer(table[f].type)
        else _to_float(table[f].to_pylist())
        for f in AUDIO_FEATURES
    ])
    problems: Counter = Counter()
    valid = np.ones(len(values), dtype=bool)
    for j, f in enumerate(AUDIO_FEATURES):
        low, high = RANGES[f]
        bad = ~np.isfinite(values[:, j]) | (values[:, j] < low) | (values[:, j] > high)
        if f in ("key", "mode"):
            bad |= np.isfinite(values[:, j]) & (values[:, j] != np.round(values[:, j]))
        problems.update({f"audio_bad_{f}": int(bad.sum())} if bad.any() else {})
        valid &= ~bad
    return values, valid, problems


def _to_float(values: list) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            pass
    return out


@dataclass(frozen=True)
class AudioScaler:
    loudness_mean: float
    loudness_std: float
    tempo_mean: float
    tempo_std: float

    @classmethod
    def fit(cls, features: np.ndarray) -> "AudioScaler":
        loudness, tempo = features[:, AUDIO_FEATURES.index("loudness")], features[:, AUDIO_FEATURES.index("tempo")]
        return cls(float(loudness.mean()), float(loudness.std() or 1.0), float(tempo.mean()), float(tempo.std() or 1.0))

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(n, 11) raw features -> (n, SCALED_DIM) float32."""
        column = {f: features[:, j] for j, f in enumerate(AUDIO_FEATURES)}
        key = column["key"]
        angle = 2 * np.pi * np.clip(key, 0, 11) / 12
        has_key = key >= 0
        scaled = np.column_stack([
            *[column[f] for f in UNIT_FEATURES],
            np.where(has_key, np.sin(angle), 0.0),
            np.where(has_key, np.cos(angle), 0.0),
            column["mode"],
            (column["loudness"] - self.loudness_mean) / self.loudness_std,
            (column["tempo"] - self.tempo_mean) / self.tempo_std,
        ])
        return scaled.astype(np.float32)
