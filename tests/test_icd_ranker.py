"""The learned ICD ranker: the boosted trees themselves, their file, and what they do for the lookup."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference.errors import IcdTableError
from inference.icd.encoder import ENCODER_FILE_NAME
from inference.icd.lookup import IcdMatcher
from inference.icd.ranker import FEATURES, MODEL_FILE_NAME, fit, load_model
from inference.icd.synonyms import LearnedData, read_term_codes, read_training_set, record_terms
from inference.icd.table import open_table
from inference.icd_training.learning import build, is_current, reference_titles, train_ranker
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
    path = tmp_path / MODEL_FILE_NAME
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
def test_ranker_codes_unseen_strings_better_than_similarity_alone(icd_data: Path) -> None:
    """Learn on one part of CHIP-CDN train, score category F1 on another part (dev stays untouched)."""
    train_path = shared_path("eval", "chip_cdn", "CHIP-CDN_train.json")
    term_codes = read_term_codes(shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv"))
    records = read_training_set(train_path)
    learn_on, score_on = records[:1600], records[-400:]
    table = open_table("who-zh")
    ranker = train_ranker(learn_on, term_codes, [table], "test", folds=2)  # setup's 5 folds take longer
    learned = LearnedData.learn(learn_on, term_codes, reference_titles(table))
    ranked, unranked = IcdMatcher(table, learned, ranker), IcdMatcher(table, learned)
    gold = [
        {term_codes[t][:3] for t in record_terms(r) if t in term_codes}
        for r in score_on
    ]
    f1_ranked = _f1(gold, [{c.code[:3] for c in ranked.codes(r["text"])} for r in score_on])
    f1_unranked = _f1(gold, [{c.code[:3] for c in unranked.codes(r["text"])} for r in score_on])
    assert f1_ranked > f1_unranked + 0.03, (f1_ranked, f1_unranked)


def test_installed_ranker_gives_probabilities_and_codes_the_field_report_example(icd_data: Path) -> None:
    shared_path("eval", "chip_cdn", "CHIP-CDN_train.json")
    matcher = IcdMatcher(open_table("who-zh"))
    assert matcher.ranker is not None, "conftest copies or learns the ranker when ../shared is present"
    ranked = matcher.lookup("慢性心力衰竭急性加重", top_k=5)
    scores = [c.score for c in ranked]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert ranked[0].code.startswith("I50")
    assert len(matcher.lookup("肾功能不全", top_k=5)) >= 2  # the ICD panel still offers the doctor alternatives
    codes = {c.code[:3] for c in matcher.codes("慢性心力衰竭急性加重,高血压心脏病,肾功能不全")}
    assert {"I50", "I11"} <= codes and codes & {"N18", "N19"}
    assert all(c.code in matcher.table for c in matcher.codes("2型糖尿病伴周围神经病变；高血压3级"))
    assert matcher.lookup("今天天气很好") == []


@pytest.mark.slow  # learns from CHIP-CDN train: minutes on two cores
def test_build_writes_every_learned_file(tmp_path: Path, icd_data: Path) -> None:
    """The setup step end to end on a slice of train (the full build runs in setup.sh)."""
    train = read_training_set(shared_path("eval", "chip_cdn", "CHIP-CDN_train.json"))[:300]
    beijing = shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv")
    small = tmp_path / "train_slice.json"
    small.write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    model_path = build(small, beijing, tmp_path / "learned")
    assert load_model(model_path) is not None
    learned = LearnedData.learn(train, read_term_codes(beijing))
    from inference.icd.synonyms import load_learned

    reloaded = load_learned(tmp_path / "learned")
    assert len(reloaded.examples) == len(learned.examples) > 250
    assert reloaded.synonyms.keys() == learned.synonyms.keys()
    assert reloaded.cues.keys() == learned.cues.keys()
    assert reloaded.encoder is not None and learned.encoder is None  # the encoder needs the reference titles
    assert is_current(small, beijing, tmp_path / "learned")  # setup skips an unchanged rebuild
    encoder_file = tmp_path / "learned" / ENCODER_FILE_NAME
    saved = encoder_file.read_bytes()
    encoder_file.write_bytes(b"damaged")  # a damaged encoder is relearned, not kept as up to date
    assert not is_current(small, beijing, tmp_path / "learned")
    encoder_file.write_bytes(saved)
    assert is_current(small, beijing, tmp_path / "learned")
    small.write_text(json.dumps(train[:299], ensure_ascii=False), encoding="utf-8")
    assert not is_current(small, beijing, tmp_path / "learned")


@pytest.mark.slow  # learns from CHIP-CDN train: minutes on two cores
def test_inputs_edited_while_learning_are_not_stamped_as_learned(
    tmp_path: Path, icd_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learning takes minutes; a training file changed meanwhile must be learned again by the next setup."""
    import inference.icd_training.learning as learning

    train = read_training_set(shared_path("eval", "chip_cdn", "CHIP-CDN_train.json"))[:300]
    beijing = shared_path("data", "icd10", "beijing_v601", "icd10_beijing_v601.csv")
    small = tmp_path / "train_slice.json"
    small.write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    real_train_ranker = learning.train_ranker

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        small.write_text(json.dumps(train[:299], ensure_ascii=False), encoding="utf-8")
        return real_train_ranker(*args, **kwargs, folds=2)

    monkeypatch.setattr(learning, "train_ranker", edited_meanwhile)
    build(small, beijing, tmp_path / "learned")
    assert not is_current(small, beijing, tmp_path / "learned")


def test_a_string_with_no_candidate_over_the_threshold_still_gets_its_likeliest_code(icd_data: Path) -> None:
    """Tree-less rankers give every candidate the same probability: the rule, not the trees, decides here."""
    from inference.icd.encoder import TextEncoder
    from inference.icd.ranker import RankerModel

    def constant(probability: float) -> RankerModel:
        return RankerModel(float(np.log(probability / (1 - probability))), (), 0.5, "constant")

    learned = LearnedData(encoder=TextEncoder.initial())  # a ranker is only used beside an encoder
    table = open_table("who-zh")
    likely = IcdMatcher(table, learned, constant(0.3))
    ranked = likely.lookup("慢性心力衰竭", top_k=3)
    assert likely.codes("慢性心力衰竭") == ranked[:1] and ranked[0].score == pytest.approx(0.3)
    assert IcdMatcher(table, learned, constant(0.1)).codes("慢性心力衰竭") == []  # below the floor: no code
    every = IcdMatcher(table, learned, constant(0.6)).codes("慢性心力衰竭")  # all over the threshold: all coded
    assert len(every) > 1 and all(c.score == pytest.approx(0.6) for c in every)
