"""A small learned text encoder for diagnosis wording: which table names a diagnosis string is close to in meaning.

Character similarity cannot tell that 右肺中叶肺不张 is about 肺不张 and not about 中叶肺癌; a model that has
seen how doctors' wording maps to standard names can. Each text is the normalised mean of vectors of its
character 1–3-grams (hashed into a fixed table, so any string has a vector), and the vectors are trained
contrastively (in-batch softmax, Adagrad) on pairs that should be close: a CHIP-CDN train string and each
of its gold standard terms, and each hospital-edition name and the WHO title of its code. Plain numpy,
seeded, about half a minute on two cores; the ranker uses the cosine as evidence and the nearest names as
extra candidates.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

ENCODER_FILE_NAME = "icd_encoder_learned.npy"
BUCKETS = 1 << 17
DIMENSIONS = 96
EPOCHS = 12
BATCH = 256
LEARNING_RATE = 0.5
TEMPERATURE = 0.1
SEED = 0


def gram_ids(text: str) -> np.ndarray:
    """Hashed character 1-, 2- and 3-grams of a text with start and end marks."""
    marked = f"^{text}$"
    grams = [marked[i : i + n] for n in (1, 2, 3) for i in range(len(marked) - n + 1)]
    return np.array([zlib.crc32(g.encode()) % BUCKETS for g in grams if g not in ("^", "$")], dtype=np.int64)


class TextEncoder:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    @classmethod
    def initial(cls, seed: int = SEED) -> TextEncoder:
        rng = np.random.default_rng(seed)
        return cls((rng.standard_normal((BUCKETS, DIMENSIONS)) * 0.1).astype(np.float32))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text."""
        return self._encode([gram_ids(text) for text in texts])[0]

    def _encode(self, ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if not ids:
            return np.zeros((0, DIMENSIONS), dtype=np.float32), np.zeros((0, 1), dtype=np.float32)
        lengths = np.array([len(i) for i in ids])  # never 0: even "" has the gram "^$"
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        means = np.add.reduceat(self.vectors[np.concatenate(ids)], starts, axis=0) / lengths[:, None]
        norms = np.linalg.norm(means, axis=1, keepdims=True) + 1e-8
        return means / norms, norms

    def save(self, path: Path) -> None:
        np.save(path, self.vectors.astype(np.float16))

    @classmethod
    def load(cls, path: Path) -> TextEncoder | None:
        """None when absent or not an encoder of this shape (the ranker then goes without it)."""
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if vectors.shape != (BUCKETS, DIMENSIONS) or not np.isfinite(vectors).all():
            return None
        return cls(vectors.astype(np.float32))


def train_encoder(pairs: list[tuple[str, str]], epochs: int = EPOCHS, seed: int = SEED) -> TextEncoder:
    """Pull each (text, name) pair together and push the other names of the batch away."""
    encoder = TextEncoder.initial(seed)
    squared = np.full(BUCKETS, 1e-8, dtype=np.float32)  # Adagrad's sum of squared gradients per row
    rng = np.random.default_rng(seed)
    ids = {text: gram_ids(text) for pair in pairs for text in pair}
    name_number = {name: number for number, name in enumerate(dict.fromkeys(n for _, n in pairs))}
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), BATCH):
            batch = [pairs[i] for i in order[start : start + BATCH]]
            queries, names = [ids[q] for q, _ in batch], [ids[n] for _, n in batch]
            u_query, n_query = encoder._encode(queries)
            u_name, n_name = encoder._encode(names)
            logits = u_query @ u_name.T / TEMPERATURE
            targets = np.array([name_number[n] for _, n in batch])
            same = (targets[:, None] == targets[None, :]).astype(np.float32)  # a shared name is no negative
            same /= same.sum(axis=1, keepdims=True)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            d = (p - same) / TEMPERATURE / len(batch)
            for u, norm, grams, g in ((u_query, n_query, queries, d @ u_name), (u_name, n_name, names, d.T @ u_query)):
                g_mean = (g - u * (u * g).sum(axis=1, keepdims=True)) / norm
                lengths = np.array([len(x) for x in grams])
                rows = np.concatenate(grams)
                owner = np.repeat(np.arange(len(grams)), lengths)
                by_row = np.argsort(rows, kind="stable")  # sum the gradients of each row: sort, then reduceat
                rows, owner = rows[by_row], owner[by_row]
                starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
                unique = rows[starts]
                summed = np.add.reduceat((g_mean / lengths[:, None])[owner], starts, axis=0).astype(np.float32)
                squared[unique] += (summed * summed).mean(axis=1)
                encoder.vectors[unique] -= LEARNING_RATE * summed / np.sqrt(squared[unique])[:, None]
    return encoder
