"""A small learned text encoder for diagnosis wording: which table names a diagnosis string is close to in meaning.

Character similarity cannot tell that 右肺中叶肺不张 is about 肺不张 and not about 中叶肺癌; a model that has
seen how doctors' wording maps to standard names can. Each text is the normalised mean of vectors of its
character 1–3-grams, hashed into as many buckets as the encoder has rows, so any string has a vector. The
vectors are learned by ``inference.icd.training.encoder_training`` and ship as int8 rows with one scale
per row; the ranker uses the cosine as evidence and the nearest names as extra candidates.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np


def gram_ids(text: str, buckets: int) -> np.ndarray:
    """Hashed character 1-, 2- and 3-grams of a text with start and end marks."""
    marked = f"^{text}$"
    grams = [marked[i : i + n] for n in (1, 2, 3) for i in range(len(marked) - n + 1)]
    return np.array([zlib.crc32(g.encode()) % buckets for g in grams if g not in ("^", "$")], dtype=np.int64)


class TextEncoder:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    @property
    def buckets(self) -> int:
        return len(self.vectors)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text."""
        return self.encode_ids([gram_ids(text, self.buckets) for text in texts])[0]

    def encode_ids(self, ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of gram-id lists, and the norms they were divided by (training needs them)."""
        if not ids:
            return np.zeros((0, self.vectors.shape[1]), dtype=np.float32), np.zeros((0, 1), dtype=np.float32)
        lengths = np.array([len(i) for i in ids])  # never 0: even "" has the gram "^$"
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        means = np.add.reduceat(self.vectors[np.concatenate(ids)], starts, axis=0) / lengths[:, None]
        norms = np.linalg.norm(means, axis=1, keepdims=True) + 1e-8
        return means / norms, norms

    def quantized(self) -> tuple[np.ndarray, np.ndarray]:
        """int8 rows and one float32 scale per row: a quarter of the float32 size."""
        scales = (np.abs(self.vectors).max(axis=1) / 127).astype(np.float32)
        scales[scales == 0] = 1.0
        return np.round(self.vectors / scales[:, None]).astype(np.int8), scales

    def save(self, path: Path, scales_path: Path) -> None:
        codes, scales = self.quantized()
        np.save(path, codes)
        np.save(scales_path, scales)

    @classmethod
    def load(cls, path: Path, scales_path: Path) -> TextEncoder | None:
        """None when absent or not a saved encoder (int8 rows, one finite scale per row)."""
        try:
            codes = np.load(path, allow_pickle=False)
            scales = np.load(scales_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if codes.dtype != np.int8 or codes.ndim != 2 or scales.shape != (len(codes),) or not np.isfinite(scales).all():
            return None
        return cls(codes.astype(np.float32) * scales[:, None].astype(np.float32))
