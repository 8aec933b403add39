"""The learned ICD ranker and the learned lookup as it ships: the trees, their file, the committed resource
(stamped, within its size budget, reproducible from ../shared) and what it does for the lookup."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference.errors import IcdTableError
from inference.icd.learned import (
    LEARNED_DIR,
    LEARNED_FILES,
    MANIFEST_FILE,
    LearnedData,
    file_sha256,
    load_shipped,
    read_learned,
)
from inference.icd.lookup import IcdMatcher
from inference.icd.ranker import FEATURES, load_model
from inference.icd.table import BUNDLED_TABLE_PATH, open_table
from inference.icd.training.build import build, check, code_hash, reference_titles, train_ranker
from inference.icd.training.corpus import learn_all, read_term_codes, read_training_set, record_terms
from inference.icd.training.encoder_training import initial_encoder
from inference.icd.training.ranker_training import fit
from tests.conftest import shared_path


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels that depend on an interaction no single feature shows (x0 high and x1 low)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, len(FEATURES)))
    y = ((x[:, 0] > 0.6) & (x[:, 1] < 0.4)) | (x[:, 2] > 0.9)
    return x, y.astype(float)


def test_boosted_trees_learn_an_interaction_and_generalize() -> None:
    x, y = _synthetic(4000, seed=1)
    model = fit(x, y, "synthetic")
    x_new, y_new = _synthetic(2000, seed=2)
    p = model.probabilities(x_new)
    assert ((p >= model.threshold) == y_new.astype(bool)).mean() > 0.97
    assert 0.2 <= model.threshold <= 0.8
    assert model.probabilities(np.zeros((0, len(FEATURES)))).shape == (0,)


def test_model_file_round_trips_exactly_and_bad_files_fall_back(tmp_path: Path) -> None:
    x, y = _synthetic(1500, seed=3)
    model = fit(x, y, "synthetic")
    path = tmp_path / "ranker.json"
    model.save(path)
    loaded = load_model(path)
    assert loaded is not None and loaded.threshold == model.threshold and loaded.trained_on == "synthetic"
    assert np.array_equal(loaded.probabilities(x), model.probabilities(x))

    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"] = data["features"][:-1]  # written by another version of the lookup
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_model(path) is None
    data["features"] = list(FEATURES)
    data["trees"][0]["left"][0] = 10_000  # a damaged tree must not crash a lookup later
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_model(path) is None
    data["trees"][0]["left"][0] = 0  # … nor send it round in a cycle
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_model(path) is None
    path.write_text("{ not json", encoding="utf-8")
    assert load_model(path) is None
    assert load_model(tmp_path / "missing.json") is None


def test_learning_refuses_the_held_out_dev_split(tmp_path: Path) -> None:
    dev = tmp_path / "CHIP-CDN_dev.json"
    dev.write_text("[]", encoding="utf-8")
    with pytest.raises(IcdTableError, match="held out"):
        read_training_set(dev)


def _f1(gold: list[set[str]], predicted: list[set[str]]) -> float:
    tp = sum(len(g & p) for g, p in zip(gold, predicted))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    return 2 * tp / (n_pred + n_gold) if n_pred + n_gold else 0.0


@pytest.mark.slow  # learns from CHIP-CDN train: minutes on two cores
def test_ranker_codes_unseen_strings_better_than_similarity_alone() -> None:
    """Learn on one part of CHIP-CDN train, score category F1 on another part (dev stays untouched). The
    baseline is what the lookup did before it learned to rank: each part's most similar name, from 0.5."""
    train_path = shared_path("eval", "chip_cdn", "CHIP-CDN_train.json")
    term_codes = read_term_codes(shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv"))
    records = read_training_set(train_path)
    learn_on, score_on = records[:1600], records[-400:]
    table = open_table("who-zh")
    ranker = train_ranker(learn_on, term_codes, [table], "test", folds=2)  # the build's 5 folds take longer
    matcher = IcdMatcher(table, learn_all(learn_on, term_codes, reference_titles(table)), ranker)
    gold = [{term_codes[t][:3] for t in record_terms(r) if t in term_codes} for r in score_on]
    f1_ranked = _f1(gold, [{c.code[:3] for c in matcher.codes(r["text"])} for r in score_on])
    similar = [
        {item.candidate.code[:3] for item in matcher.evidence(r["text"])[0]
         if item.from_lookup and item.rank == 0 and item.candidate.score >= 0.5}
        for r in score_on
    ]
    f1_similar = _f1(gold, similar)
    assert f1_ranked > f1_similar + 0.03, (f1_ranked, f1_similar)


def test_shipped_lookup_gives_probabilities_and_codes_the_field_report_example(icd_data: Path) -> None:
    """No ../shared and nothing in the data dir: the lookup that ships is the learned one."""
    matcher = IcdMatcher(open_table("who-zh"))
    assert matcher.ranker is not None and matcher.ranker.trained_on.startswith("CHIP-CDN_train.json")
    ranked = matcher.lookup("慢性心力衰竭急性加重", top_k=5)
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert ranked[0].code.startswith("I50")
    assert len(matcher.lookup("肾功能不全", top_k=5)) >= 2  # the ICD panel still offers the doctor alternatives
    codes = {c.code[:3] for c in matcher.codes("慢性心力衰竭急性加重,高血压心脏病,肾功能不全")}
    assert {"I50", "I11"} <= codes and codes & {"N18", "N19"}
    assert all(c.code in matcher.table for c in matcher.codes("2型糖尿病伴周围神经病变；高血压3级"))
    assert matcher.lookup("今天天气很好") == []
    assert matcher.knows("高血压心脏病") and not matcher.knows("今天天气很好")


def test_shipped_lookup_is_stamped_with_this_code_and_fits_its_size_budget() -> None:
    """The committed files are the ones the manifest names, built by the code in this checkout from the
    bundled table in it; no file over 5 MB, all of them within 8 MB."""
    manifest = json.loads((LEARNED_DIR / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["code"] == code_hash(), "the lookup's code changed: python -m inference.icd.training build"
    assert manifest["inputs"][BUNDLED_TABLE_PATH.name] == file_sha256(BUNDLED_TABLE_PATH)
    assert set(manifest["inputs"]) == {"CHIP-CDN_train.json", "icd10_beijing_v601.csv", BUNDLED_TABLE_PATH.name}
    sizes = {name: (LEARNED_DIR / name).stat().st_size for name in LEARNED_FILES}
    assert max(sizes.values()) <= 5 * 2**20 and sum(sizes.values()) <= 8 * 2**20, sizes
    assert (LEARNED_DIR / "PROVENANCE.md").exists()
    shipped = load_shipped()
    assert shipped.manifest["files"] == {name: file_sha256(LEARNED_DIR / name) for name in LEARNED_FILES}


def test_an_altered_or_missing_learned_file_is_an_incomplete_install(tmp_path: Path) -> None:
    copy = tmp_path / "learned"
    shutil.copytree(LEARNED_DIR, copy)
    assert load_shipped(copy).ranker.threshold == load_shipped().ranker.threshold
    load_shipped.cache_clear()
    cues = copy / "cues.tsv"
    cues.write_text(cues.read_text(encoding="utf-8") + "心衰\t心力衰竭\tI50.9\t1.0\n", encoding="utf-8")
    with pytest.raises(IcdTableError, match="改动|altered"):
        load_shipped(copy)
    (copy / "ranker.json").unlink()
    with pytest.raises(IcdTableError):
        load_shipped(copy)
    (copy / MANIFEST_FILE).unlink()
    with pytest.raises(IcdTableError, match="缺少|missing"):
        load_shipped(copy)


@pytest.mark.slow  # learns from CHIP-CDN train: minutes on two cores
def test_build_writes_every_learned_file_with_its_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build end to end on a slice of train; the training file edited while it learns is stamped with
    the hash it had when learning began, so the check that follows sees the change."""
    import inference.icd.training.build as building
    import inference.icd.training.corpus as corpus
    from inference.icd.training.encoder_training import train_encoder

    # One epoch per encoder: the full build's twelve are the reproduction test's business.
    monkeypatch.setattr(corpus, "train_encoder", lambda pairs: train_encoder(pairs, epochs=1))
    train = read_training_set(shared_path("eval", "chip_cdn", "CHIP-CDN_train.json"))[:300]
    beijing = shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv")
    small = tmp_path / "train_slice.json"
    small.write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    before = file_sha256(small)
    real_train_ranker = building.train_ranker

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        small.write_text(json.dumps(train[:299], ensure_ascii=False), encoding="utf-8")
        return real_train_ranker(*args, **kwargs, folds=2)

    monkeypatch.setattr(building, "train_ranker", edited_meanwhile)
    manifest = build(small, beijing, tmp_path / "learned")
    assert manifest["inputs"][small.name] == before != file_sha256(small)
    shipped = load_shipped(tmp_path / "learned")
    learned = learn_all(train, read_term_codes(beijing))
    assert len(shipped.learned.examples) == len(learned.examples) > 250
    assert shipped.learned.synonyms.keys() == learned.synonyms.keys()
    assert shipped.learned.cues.keys() == learned.cues.keys()
    assert shipped.learned.encoder is not None and learned.encoder is None  # the encoder needs the reference titles
    assert manifest["files"] == {name: file_sha256(tmp_path / "learned" / name) for name in LEARNED_FILES}
    assert read_learned(tmp_path / "learned").examples == shipped.learned.examples


@pytest.mark.slow  # the whole build from ../shared: about ten minutes on two cores
def test_the_shipped_lookup_is_reproduced_from_shared() -> None:
    """``python -m inference.icd.training check``: rebuilt from CHIP-CDN train and the 北京临床版 names, it
    gives the committed files byte for byte, or the same scores where floating point differs."""
    train = shared_path("eval", "chip_cdn", "CHIP-CDN_train.json")
    beijing = shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv")
    assert check(train, beijing) == []


def test_a_string_with_no_candidate_over_the_threshold_still_gets_its_likeliest_code(icd_data: Path) -> None:
    """Tree-less rankers give every candidate the same probability: the rule, not the trees, decides here."""
    from inference.icd.ranker import RankerModel

    def constant(probability: float) -> RankerModel:
        return RankerModel(float(np.log(probability / (1 - probability))), (), 0.5, "constant")

    learned = LearnedData(encoder=initial_encoder())  # a ranker is only used beside an encoder
    table = open_table("who-zh")
    likely = IcdMatcher(table, learned, constant(0.3))
    ranked = likely.lookup("慢性心力衰竭", top_k=3)
    assert likely.codes("慢性心力衰竭") == ranked[:1] and ranked[0].score == pytest.approx(0.3)
    assert IcdMatcher(table, learned, constant(0.1)).codes("慢性心力衰竭") == []  # below the floor: no code
    every = IcdMatcher(table, learned, constant(0.6)).codes("慢性心力衰竭")  # all over the threshold: all coded
    assert len(every) > 1 and all(c.score == pytest.approx(0.6) for c in every)
