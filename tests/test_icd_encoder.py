"""The learned text encoder: training pulls paired wordings together, its file, and what it finds on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.icd.encoder import TextEncoder, gram_ids
from inference.icd.learned import normalize_text
from inference.icd.table import open_table
from inference.icd.training.build import reference_titles
from inference.icd.training.corpus import encoder_pairs, read_term_codes, read_training_set, record_terms
from inference.icd.training.encoder_training import BUCKETS, initial_encoder, train_encoder
from tests.conftest import shared_path

_PAIRS = [
    ("心梗", "心肌梗死"), ("急性心梗", "心肌梗死"), ("陈旧性心梗", "心肌梗死"),
    ("慢阻肺", "慢性阻塞性肺疾病"), ("慢阻肺急性加重", "慢性阻塞性肺疾病"),
    ("脑梗", "脑梗死"), ("多发脑梗", "脑梗死"),
    ("房颤", "心房颤动"), ("阵发性房颤", "心房颤动"),
]


def test_training_places_each_wording_nearest_its_paired_name() -> None:
    encoder = train_encoder(_PAIRS * 30, epochs=4)
    names = sorted({name for _, name in _PAIRS})
    vectors = encoder.encode(names)
    for query in ("心梗", "慢阻肺急性加重", "多发脑梗", "阵发性房颤"):
        nearest = names[int(np.argmax(vectors @ encoder.encode([query])[0]))]
        assert nearest == dict(_PAIRS)[query]
    untrained = initial_encoder()  # the same seed without training: no such structure
    hits = sum(
        names[int(np.argmax(untrained.encode(names) @ untrained.encode([q])[0]))] == n for q, n in _PAIRS
    )
    assert hits < len(_PAIRS)
    assert np.allclose(np.linalg.norm(encoder.encode(["", "心梗", "X" * 300]), axis=1), 1.0, atol=1e-4)


def test_training_is_deterministic_and_any_text_has_grams() -> None:
    a, b = train_encoder(_PAIRS, epochs=2), train_encoder(_PAIRS, epochs=2)
    assert np.array_equal(a.vectors, b.vectors)
    assert len(gram_ids("", BUCKETS)) == 1 and all(0 <= i < BUCKETS for i in gram_ids("高血压3级", BUCKETS))


def test_encoder_ships_as_int8_rows_that_encode_as_the_float_ones_and_bad_files_are_ignored(tmp_path: Path) -> None:
    encoder = train_encoder(_PAIRS, epochs=2)
    path, scales = tmp_path / "encoder.npy", tmp_path / "encoder_scales.npy"
    encoder.save(path, scales)
    assert path.stat().st_size < BUCKETS * encoder.vectors.shape[1] + 1024  # one byte a value
    loaded = TextEncoder.load(path, scales)
    assert loaded is not None and loaded.buckets == BUCKETS
    texts = ["心梗", "慢性阻塞性肺疾病", "阵发性房颤"]
    cosines = (loaded.encode(texts) * encoder.encode(texts)).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    np.save(path, encoder.vectors[:10].astype(np.float16))  # not int8 rows: another version
    assert TextEncoder.load(path, scales) is None
    np.save(path, np.zeros((10, 4), dtype=np.int8))  # a scale per row is missing
    assert TextEncoder.load(path, scales) is None
    path.write_bytes(b"not an array")
    assert TextEncoder.load(path, scales) is None
    assert TextEncoder.load(tmp_path / "missing.npy", scales) is None


@pytest.mark.slow  # learns from CHIP-CDN train: minutes on two cores
def test_learned_encoder_finds_gold_terms_of_unseen_strings(icd_data: Path) -> None:
    """Learn on part of CHIP-CDN train, retrieve 北京临床版 names for strings of another part (dev untouched)."""
    records = read_training_set(shared_path("eval", "chip_cdn", "CHIP-CDN_train.json"))
    term_codes = read_term_codes(shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv"))
    learn_on, score_on = records[:2000], records[-300:]
    encoder = train_encoder(encoder_pairs(learn_on, term_codes, reference_titles(open_table("who-zh"))), epochs=4)
    names = sorted(term_codes)
    vectors = encoder.encode([normalize_text(n) for n in names])
    untrained = initial_encoder()
    untrained_vectors = untrained.encode([normalize_text(n) for n in names])
    found = found_untrained = total = 0
    for record in score_on:
        gold = set(record_terms(record))
        text = normalize_text(record["text"])
        top = np.argsort(-(vectors @ encoder.encode([text])[0]))[:5]
        top_untrained = np.argsort(-(untrained_vectors @ untrained.encode([text])[0]))[:5]
        found += len(gold & {names[i] for i in top})
        found_untrained += len(gold & {names[i] for i in top_untrained})
        total += len(gold)
    assert found / total > 0.4 and found > found_untrained + 0.1 * total, (found, found_untrained, total)
