"""Learn the text encoder's gram vectors: contrastive (in-batch softmax, Adagrad) on pairs that should be
close — a CHIP-CDN train string and each of its gold standard terms, each hospital-edition name and the
WHO title of its code. Plain numpy, seeded, deterministic on one machine.

BUCKETS × DIMENSIONS was chosen by the train hold-out score (README, "ICD lookup"): 2^15 buckets of 96
int8 values (3 MB) score as the 2^17 float model did, which at 25 MB could not ship.
"""

from __future__ import annotations

import numpy as np

from inference.icd.encoder import TextEncoder, gram_ids

BUCKETS = 1 << 15
DIMENSIONS = 96
EPOCHS = 12
BATCH = 256
LEARNING_RATE = 0.5
TEMPERATURE = 0.1
SEED = 0


def initial_encoder(buckets: int = BUCKETS, dimensions: int = DIMENSIONS, seed: int = SEED) -> TextEncoder:
    rng = np.random.default_rng(seed)
    return TextEncoder((rng.standard_normal((buckets, dimensions)) * 0.1).astype(np.float32))


def train_encoder(
    pairs: list[tuple[str, str]], epochs: int = EPOCHS, seed: int = SEED, buckets: int = BUCKETS,
    dimensions: int = DIMENSIONS,
) -> TextEncoder:
    """Pull each (text, name) pair together and push the other names of the batch away."""
    encoder = initial_encoder(buckets, dimensions, seed)
    squared = np.full(buckets, 1e-8, dtype=np.float32)  # Adagrad's sum of squared gradients per row
    rng = np.random.default_rng(seed)
    ids = {text: gram_ids(text, buckets) for pair in pairs for text in pair}
    name_number = {name: number for number, name in enumerate(dict.fromkeys(n for _, n in pairs))}
    for _ in range(epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), BATCH):
            batch = [pairs[i] for i in order[start : start + BATCH]]
            queries, names = [ids[q] for q, _ in batch], [ids[n] for _, n in batch]
            u_query, n_query = encoder.encode_ids(queries)
            u_name, n_name = encoder.encode_ids(names)
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
