"""Codes a coder signs for the diagnoses wards write every day: one disease stays one code, stages and types are
kept, no wrong chapter, nothing the record's patient cannot have. The development set (tests/data, built from
CHIP-CDN train and the field report by bench/icd_everyday.py) is a regression test of the whole coding path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inference.errors import IcdTableError
from inference.icd.coding import direct_assignment, icd_tool, match_label, to_final_codes
from inference.icd.lookup import matcher_for
from inference.icd.reading import detail_tokens, sense_rules
from inference.icd.table import open_table
from inference.record.patient import patient_of


@pytest.fixture(scope="module")
def table(icd_data_module):  # type: ignore[no-untyped-def]
    return open_table("who-zh")


@pytest.fixture(scope="module")
def icd_data_module(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The bundled table only: the coding path needs no data directory."""
    return tmp_path_factory.mktemp("icd")


def final_code(text: str, table, patient_words: str = "") -> str | None:  # type: ignore[no-untyped-def]
    patient = patient_of(patient_words) if patient_words else None
    return to_final_codes([direct_assignment(text, table, patient=patient)], table)[0].code


@pytest.mark.parametrize(("wording", "code"), [
    ("2型糖尿病肾病", "E11.2"),  # one disease with its manifestation, not E11.9 + N28.9
    ("2型糖尿病视网膜病变", "E11.3"),  # a ward's word for the title's 眼的并发症
    ("2型糖尿病周围神经病变", "E11.4"),  # not G62.9 on its own
    ("1型糖尿病酮症酸中毒", "E10.1"),  # the type stated, the type coded
    ("胆囊结石伴急性胆囊炎", "K80.0"),  # never 胆囊结石不伴有胆囊炎, the opposite of its words
    ("胆总管结石伴胆管炎", "K80.3"),  # never K80.5 不伴有胆管炎
    ("胃溃疡伴出血", "K25.4"),
])
def test_one_disease_stays_one_code(table, wording: str, code: str) -> None:  # type: ignore[no-untyped-def]
    assert final_code(wording, table) == code
    assert matcher_for(table).conditions(wording) == [wording]  # and the wording step does not split it


def test_a_title_without_what_the_wording_states_is_never_offered(table) -> None:  # type: ignore[no-untyped-def]
    offered = {c.code for c in matcher_for(table).lookup("胆囊结石伴急性胆囊炎", 10)}
    assert "K80.2" not in offered  # 胆囊结石不伴有胆囊炎
    offered = {c.code for c in matcher_for(table).lookup("2型糖尿病肾病", 10)}
    assert "E11.9" not in offered and "E14.2" not in offered  # 不伴有并发症; the diabetes without its type


@pytest.mark.parametrize(("wording", "code"), [
    ("慢性肾脏病5期", "N18.5"), ("慢性肾脏病3期", "N18.3"), ("慢性肾脏病IV期", "N18.4"),
    ("持续性心房颤动", "I48.1"), ("阵发性心房颤动", "I48.0"),
])
def test_the_stage_type_or_course_the_wording_states_reaches_the_leaf(table, wording: str, code: str) -> None:  # type: ignore[no-untyped-def]
    assert final_code(wording, table) == code


def test_detail_words_read_the_same_in_any_numerals() -> None:
    assert detail_tokens("慢性肾脏病IV期") == detail_tokens("慢性肾脏疾病，4期") == {"4期", "慢性"}
    assert detail_tokens("高血压病三级") == {"3级"}
    assert detail_tokens("心房颤动") == set()


@pytest.mark.parametrize(("wording", "code", "never"), [
    ("急性肾损伤", "N17.9", re.compile(r"^[ST]")),  # acute kidney injury is renal failure, not trauma
    ("药物性肝损伤", None, re.compile(r"^[ST]")),
    ("肝硬化", "K74.6", re.compile(r"^K74\.1$")),  # hepatic sclerosis is the false friend
    ("皮肤巩膜黄染", "R17.0", re.compile(r"^[LO]")),
])
def test_each_chapter_sense_rule_reads_the_words_as_a_coder_does(table, wording, code, never) -> None:  # type: ignore[no-untyped-def]
    offered = [c.code for c in matcher_for(table).lookup(wording, 10)]
    assert offered and not any(never.search(c) for c in offered)
    if code is not None:
        assert final_code(wording, table) == code


def test_trauma_wording_keeps_the_injury_chapter(table) -> None:  # type: ignore[no-untyped-def]
    assert final_code("车祸致肾损伤", table)[:1] == "S"


def test_every_sense_rule_row_is_readable_and_says_why() -> None:
    rules = sense_rules()
    assert rules and all(rule.reason and (rule.never or rule.prefer) for rule in rules)


RULE_FILES = [  # (module, loader, file, a row it cannot take)
    ("inference.icd.reading", "sense_rules", "chapter_sense.tsv", "肾损伤(\t\t^S\t\t原因"),
    ("inference.icd.reading", "sense_rules", "chapter_sense.tsv", "肾损伤\t\t\t\t原因"),  # neither never nor prefer
    ("inference.icd.patient_rules", "patient_rules", "patient_rules.tsv", "^O\tboth\t-\t-\t妊娠"),
    ("inference.icd.patient_rules", "patient_rules", "patient_rules.tsv", "^O\tfemale\tnine\t60\t妊娠"),
]


@pytest.mark.parametrize(("module", "loader", "file_name", "bad_row"), RULE_FILES)
@pytest.mark.parametrize("damage", ["bad row", "not utf-8", "missing"])
def test_a_broken_rules_file_is_a_clear_error(tmp_path: Path, monkeypatch, module: str, loader: str,  # type: ignore[no-untyped-def]
                                              file_name: str, bad_row: str, damage: str) -> None:
    import importlib

    loaded = importlib.import_module(module)
    (tmp_path / "icd").mkdir()
    target = tmp_path / "icd" / file_name
    if damage == "bad row":
        target.write_text(bad_row + "\n", encoding="utf-8")
    elif damage == "not utf-8":
        target.write_bytes("\t".join(["^O", "female", "-", "-", "妊娠"]).encode("gb18030") + b"\xff\xfe\n")
    monkeypatch.setattr(loaded, "resources_dir", lambda: tmp_path)
    load = getattr(loaded, loader)
    load.cache_clear()
    try:
        with pytest.raises(IcdTableError) as raised:
            load()
    finally:
        load.cache_clear()
    message = raised.value.message
    assert "\n" not in message and file_name in message
    assert {"bad row": "第 1 条有误", "not utf-8": "不是 UTF-8", "missing": "缺少"}[damage] in message


def test_an_unreadable_manifestation_words_file_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    import inference.icd.reading as reading

    (tmp_path / "icd").mkdir()
    (tmp_path / "icd" / "manifestation_words.tsv").write_bytes(b"\xff\xfe\xfa")
    monkeypatch.setattr(reading, "resources_dir", lambda: tmp_path)
    reading.manifestation_words.cache_clear()
    try:
        with pytest.raises(IcdTableError, match="manifestation_words.tsv"):
            reading.manifestation_words()
    finally:
        reading.manifestation_words.cache_clear()


def test_a_code_the_records_patient_cannot_have_is_never_proposed(table) -> None:  # type: ignore[no-untyped-def]
    man = patient_of("患者男性，52岁，因皮肤黄染1周入院")
    candidates = direct_assignment("妊娠期糖尿病", table, patient=man).candidates
    assert candidates and not any(c.code.startswith("O") for c in candidates)
    woman = patient_of("患者女性，28岁，孕32周")
    assert direct_assignment("妊娠期糖尿病", table, patient=woman).code.startswith("O24")
    tool = icd_tool(table, man)
    results = tool.function(disease_name="妊娠期糖尿病")
    assert results and not any(r["code"].startswith("O") for r in results)


def test_the_function_call_answers_with_table_names_and_the_reason_in_words(table) -> None:  # type: ignore[no-untyped-def]
    results = icd_tool(table).function(disease_name="2型糖尿病肾病")
    first = results[0]
    assert first["code"] == "E11.2" and first["name"] == "2型糖尿病伴有肾的并发症"
    assert first["reason"] == "编码表标题所述的合并情况：伴有肾"
    assert all(r["reason"] and not r["reason"].isascii() for r in results)
    json.dumps(results, ensure_ascii=False)  # what the model reads


def test_several_conditions_are_split_visibly_and_a_status_word_stays_with_its_condition(table) -> None:  # type: ignore[no-untyped-def]
    matcher = matcher_for(table)
    assert matcher.conditions("糖尿病高血压") == ["糖尿病", "高血压"]
    assert matcher.conditions("肺炎伴胸腔积液") == ["肺炎", "胸腔积液"]  # no title says pneumonia with effusion
    assert matcher.conditions("乳腺癌术后") == ["乳腺癌术后"]
    note = direct_assignment("糖尿病高血压", table).note
    assert "含 2 个病情" in note and "糖尿病、高血压" in note
    assert direct_assignment("2型糖尿病肾病", table).note == ""


def test_match_labels_say_which_rule_and_what_it_read() -> None:
    assert match_label("coder_rule_detail (5期)") == "所述分期/分型：5期"
    assert match_label("exact_name") == "名称精确匹配"


def test_the_development_set_is_coded_as_a_coder_signs(table) -> None:  # type: ignore[no-untyped-def]
    """The whole path on everyday diagnoses (CHIP-CDN train's frequent terms and the field report's): at least
    98% right at category and at leaf (bench/icd_everyday.py score lists the misses)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("icd_everyday", Path(__file__).parent.parent / "bench" / "icd_everyday.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.read_dev_set()
    assert len(rows) >= 400 and sum(source == "field" for *_rest, source in rows) >= 60
    result = bench.score(show_wrong=False)
    assert result["category"] >= 0.98 and result["leaf"] >= 0.98


def test_the_panel_shows_a_split_under_the_table(qtbot, table) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QWidget

    from desktop.background import Background
    from desktop.icd_panel import IcdPanel

    holder = QWidget()
    qtbot.addWidget(holder)
    panel = IcdPanel(Background(holder), holder)
    panel.set_table(table)
    panel.set_assignments([direct_assignment("糖尿病高血压", table), direct_assignment("2型糖尿病肾病", table)])
    panel.rows.selectRow(0)
    assert "含 2 个病情（糖尿病、高血压）" in panel.details.text()
    panel.rows.selectRow(1)
    assert panel.rows.item(1, 1).text() == "E11.2 2型糖尿病伴有肾的并发症" and "病情" not in panel.details.text()
    assert "伴有肾" in panel.candidates.item(0).text()  # the reason the code was proposed, in words
