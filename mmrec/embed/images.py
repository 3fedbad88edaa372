"""Album covers: bytes of any format and mode -> a 128x128x3 float array, or None for an unreadable file."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

COVER_SIZE = 128


def decode_cover(data: bytes, size: int = COVER_SIZE) -> tuple[np.ndarray | None, str]:
    """(image (size, size, 3) float32 in [0, 1] or None, reason): grayscale, CMYK, palette and alpha images are
    converted to RGB; the largest centred square is cropped, then resized. Empty, truncated and corrupt files
    give None and a reason ("empty", "corrupt") for the card."""
    if not data:
        return None, "empty"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns on odd EXIF; the pixels are what matter
            image = Image.open(io.BytesIO(data))
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None, "corrupt"
    image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0, "ok"


def to_channels_first(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) -> (N, 3, H, W), the layout convolutions take."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
