"""Cohort queries over the history and the research export: thresholds with units, codes, diagnoses; hostile
expressions; a query while another process saves; a history of 100,000 runs."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.cli.main import main
from inference.errors import UsageError
from inference.history.cohort import find_cohort, parse_query
from inference.history.research_export import KEY_FILE_NAME, export_cohort
from inference.history.stats import read_stats
from inference.history.store import HistoryStore
from inference.record.conversions import conversion
from inference.record.summary import Diagnosis, ExamItem
from tests.conftest import SAMPLE_RECORD
from tests.history_helpers import SAMPLE_SUMMARY, sample_report


@pytest.fixture
def store(tmp_path: Path):
    opened = HistoryStore.open(tmp_path / "history.sqlite")
    yield opened
    opened.close()


def _record(store: HistoryStore, tmp_path: Path, name: str, exams: list[ExamItem], diagnoses: list[str],
            codes: list[str]) -> int:
    """A record of its own (its own text) whose latest version states these exams, diagnoses and codes."""
    path = tmp_path / f"{name}.txt"
    path.write_text(SAMPLE_RECORD.read_text(encoding="utf-8") + f"\n{name}\n", encoding="utf-8")
    report = sample_report(path)
    document_id = store.record_run(report.run_record(), {}).document_id
    summary = SAMPLE_SUMMARY.model_copy(update={"auxiliary_exams": exams,
                                               "diagnoses": [Diagnosis(name=d) for d in diagnoses]})
    store.save_edit(document_id, summary, [{"diagnosis": d, "code": c} for d, c in zip(diagnoses, codes)])
    return document_id


@pytest.fixture
def cohort_store(store: HistoryStore, tmp_path: Path) -> dict[str, int]:
    return {
        "hf": _record(store, tmp_path, "hf", [ExamItem(name="LVEF", value="35", unit="%"),
                                              ExamItem(name="NT-proBNP", value="4500", unit="pg/mL"),
                                              ExamItem(name="肌酐", value="1.8", unit="mg/dL")],
                      ["慢性心力衰竭"], ["I50.9"]),
        "preserved": _record(store, tmp_path, "preserved", [ExamItem(name="EF", value="55", unit="%"),
                                                            ExamItem(name="BNP", value="900", unit="pg/mL"),
                                                            ExamItem(name="Cr", value="90", unit="μmol/L")],
                             ["射血分数保留的心力衰竭", "高血压"], ["I50.0", "I10"]),
        "copd": _record(store, tmp_path, "copd", [ExamItem(name="NT-proBNP", value="1.2", unit="ng/mL")],
                        ["慢性阻塞性肺疾病"], ["J44.9"]),
    }


def ids(store: HistoryStore, expression: str, **filters) -> set[int]:
    return {m.document_id for m in find_cohort(store, parse_query(expression, **filters)).members}


@pytest.mark.parametrize("expression, expected", [
    ("LVEF<40%", {"hf"}),
    ("LVEF<40", {"hf"}),  # LVEF has one unit: it may be left out
    ("射血分数>=50%", {"preserved"}),  # a name's other spelling is the same quantity
    ("NT-proBNP>=1000 pg/mL", {"hf", "copd"}),  # 1.2 ng/mL is 1200 pg/mL
    ("NT-proBNP>=1000 ng/L", {"hf", "copd"}),
    ("NT-proBNP>=2 ng/mL", {"hf"}),
    ("BNP>=100 pg/mL", {"preserved"}),  # BNP is not NT-proBNP
    ("肌酐>133 μmol/L", {"hf"}),  # 1.8 mg/dL is 159 μmol/L
    ("肌酐<=1.1 mg/dL", {"preserved"}),  # 90 μmol/L is 1.02 mg/dL
    ("I50*", {"hf", "preserved"}),
    ("I50", {"hf", "preserved"}),  # a code and every code under it
    ("I50.9", {"hf"}),
    ("icd:J44.*", {"copd"}),
    ("诊断:心力衰竭", {"hf", "preserved"}),
    ("dx:心衰", {"hf", "preserved"}),  # the short form finds the standard wording
    ("I50* and LVEF<40%", {"hf"}),
    ("I50* 且 BNP>=100 pg/mL & 诊断:高血压", {"preserved"}),
    ("LVEF＜40％", {"hf"}),  # full-width, as typed with a Chinese input method
    ("NT-proBNP≥1000 pg/mL", {"hf", "copd"}),
])
def test_a_query_finds_the_records_whose_latest_version_meets_it(store, cohort_store, expression, expected) -> None:
    assert ids(store, expression) == {cohort_store[name] for name in expected}


def test_only_the_latest_version_counts_and_status_and_dates_filter(store, cohort_store, tmp_path) -> None:
    hf = cohort_store["hf"]
    store.set_status(hf, "signed", signer="张医生")
    assert ids(store, "I50*", status="signed") == {hf}
    assert ids(store, "I50*", status="draft") == {cohort_store["preserved"]}
    today = datetime.now().date()
    assert ids(store, "I50*", since=today, until=today) == {hf, cohort_store["preserved"]}
    assert ids(store, "I50*", until=today.replace(year=today.year - 1)) == set()
    store.save_edit(hf, SAMPLE_SUMMARY.model_copy(update={"auxiliary_exams": [ExamItem(name="LVEF", value="45",
                                                                                        unit="%")]}), [])
    assert ids(store, "LVEF<40%") == set()  # the doctor corrected the value: the record leaves the cohort


def test_unit_conversions_go_both_ways_and_only_where_the_table_allows() -> None:
    assert conversion("creatinine", "mg/dL", "μmol/L") == pytest.approx(88.4)
    assert conversion("creatinine", "μmol/L", "mg/dL") == pytest.approx(1 / 88.4)
    assert conversion("nt_probnp", "pg/mL", "ng/L") == 1.0
    assert conversion("lvef", "%", "mmHg") is None
    assert conversion("potassium", "mg/dL", "mmol/L") is None  # molar conversions are per substance


@pytest.mark.parametrize("expression, fragment", [
    ("", "请给出检索条件"),
    ("   ", "请给出检索条件"),
    ("LVEF<<4", "无法理解的条件"),
    ("LVEF<40 mmHg", "不以 mmHg 计量"),
    ("NT-proBNP>1000", "须写单位"),
    ("D-二聚体>0.5", "须写单位"),
    ("LVEF<40 furlongs", "未知单位"),
    ("Z99.9*", "编码表中没有"),
    ("心衰", "无法理解的条件"),
    ("x" * 501, "检索条件过长"),
    (" and ".join(["LVEF<40%"] * 11), "条件过多"),
    ("<40%", "无法理解的条件"),
    ("LVEF<40% and", None),  # a trailing joiner is harmless
])
def test_a_bad_expression_is_one_clear_line(expression, fragment) -> None:
    if fragment is None:
        assert parse_query(expression, known_codes={"I50.9"}).thresholds
        return
    with pytest.raises(UsageError) as caught:
        parse_query(expression, known_codes={"I50.9", "I11.0"})
    assert fragment in caught.value.message and "\n" not in caught.value.message


def test_bad_filters_are_refused() -> None:
    with pytest.raises(UsageError, match="未知状态"):
        parse_query("I50*", status="archived")
    with pytest.raises(UsageError, match="晚于"):
        parse_query("I50*", since=datetime(2026, 2, 1).date(), until=datetime(2026, 1, 1).date())


@settings(max_examples=int(os.environ.get("MEDBRIEF_FUZZ_EXAMPLES", "150")), deadline=None)
@given(st.text(max_size=120) | st.from_regex(r"[A-Za-z\u4e00-\u9fa5\- ]{0,8}[<>=≥≤＜＞]{1,3}[\d.]{0,6} ?[a-zA-Zμ%/]{0,6}"))
def test_any_expression_is_a_query_or_one_usage_line(expression: str) -> None:
    try:
        query = parse_query(expression, known_codes={"I50.9"})
    except UsageError as exc:
        assert exc.message and "\n" not in exc.message
        return
    assert query.thresholds or query.codes or query.diagnoses


def test_the_research_export_is_pseudonymous_stable_and_audited(store, cohort_store) -> None:
    cohort = find_cohort(store, parse_query("I50*"))
    text = export_cohort(store, cohort, "csv", "cohort.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["person"] for r in rows} and all(r["person"].startswith("P") for r in rows)
    assert "hf.txt" not in text and "file_name" not in rows[0] and "document_id" not in rows[0]
    lvef = next(r for r in rows if r["parameter"] == "lvef")
    assert (lvef["section"], lvef["snippet"], lvef["value_number"], lvef["unit"]) == \
        ("auxiliary_exams", "LVEF 35%", "35.0", "%")
    codes = {r["term"]: r["code"] for r in rows if r["section"] == "diagnoses"}
    assert codes == {"慢性心力衰竭": "I50.9", "射血分数保留的心力衰竭": "I50.0", "高血压": "I10"}
    again = export_cohort(store, cohort, "jsonl", "cohort.jsonl")
    assert {json.loads(line)["person"] for line in again.splitlines()} == {r["person"] for r in rows}
    identified = export_cohort(store, cohort, "jsonl", "named.jsonl", identified=True)
    assert {json.loads(line)["file_name"] for line in identified.splitlines()} == {"hf.txt", "preserved.txt"}
    key = store.path.parent / KEY_FILE_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    events = [e.detail for e in store.audit_log() if e.action == "cohort_export"]
    assert [(e["format"], e["records"], e["identified"]) for e in reversed(events)] == \
        [("csv", 2, False), ("jsonl", 2, False), ("jsonl", 2, True)]


def test_a_query_answers_while_another_process_holds_the_write_lock(store, cohort_store) -> None:
    writer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys, time
        db = sqlite3.connect({str(store.path)!r}, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO audit_events (at, os_user, action, detail) VALUES ('2026-01-01', 'x', 'edit', '{{}}')")
        print("locked", flush=True)
        time.sleep(30)
        db.execute("ROLLBACK")
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "locked"
        assert ids(store, "I50*") == {cohort_store["hf"], cohort_store["preserved"]}
        assert read_stats(store).rows()[0].runs == 3
        assert writer.poll() is None  # answered while the other process still held the lock
    finally:
        writer.kill()
        writer.wait()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_query_command_lists_exports_and_refuses(capsys, tmp_path) -> None:
    code, out, _err = _cli(capsys, "history", "query", "LVEF<40%")
    assert code == 0 and "0 份记录" in out  # an empty history answers, it does not fail
    store = HistoryStore.open()
    _record(store, tmp_path, "hf", [ExamItem(name="LVEF", value="35", unit="%")], ["慢性心力衰竭"], ["I50.9"])
    store.close()
    code, out, _err = _cli(capsys, "history", "query", "LVEF<40%")
    assert code == 0 and "hf.txt" in out and "1 份记录" in out
    target = tmp_path / "cohort.csv"
    code, _out, err = _cli(capsys, "history", "query", "LVEF<40% and I50*", "--csv", "--out", str(target))
    assert code == 0 and "1 份记录" in err and "LVEF 35%" in target.read_text(encoding="utf-8")
    code, out, _err = _cli(capsys, "history", "query", "I50*", "--json", "--identify")
    assert code == 0 and json.loads(out.splitlines()[0])["file_name"] == "hf.txt"
    for argv, fragment in ((["LVEF<<4"], "无法理解"), (["LVEF<40%", "--json", "--csv"], "只能选一个"),
                           (["I50*", "--since", "yesterday"], "日期写法有误"), ([], "请给出检索条件"),
                           (["I50*", "--identify"], "只用于")):
        code, _out, err = _cli(capsys, "history", "query", *argv)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_history_of_100000_runs_answers_statistics_and_queries(tmp_path: Path) -> None:
    """Written the way a busy ward would fill it over years (rows inserted directly, for speed)."""
    store = HistoryStore.open(tmp_path / "history.sqlite")
    report = sample_report()
    recorded = store.record_run(report.run_record(), {})
    store.close()
    runs, versions = 100_000, []
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        run_row = db.execute("SELECT * FROM runs WHERE id = ?", (recorded.run_id,)).fetchone()
        columns = [c[1] for c in db.execute("PRAGMA table_info(runs)")]
        version_row = db.execute("SELECT * FROM summary_versions WHERE id = ?", (recorded.version_id,)).fetchone()
        version_columns = [c[1] for c in db.execute("PRAGMA table_info(summary_versions)")]
        for i in range(2, runs + 1):
            db.execute("INSERT INTO documents (id, file_name, sha256, encoding, text, imported_at) VALUES "
                       "(?, ?, ?, 'utf-8', 'x', '2026-01-01 00:00:00')", (i, f"r{i}.txt", f"{i:064d}"))
        db.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                       [(i, i, *run_row[2:]) for i in range(2, runs + 1)])
        status = version_columns.index("status")
        for i in range(2, runs + 1):
            row = list(version_row)
            row[0], row[1], row[2] = i, i, i
            row[status] = "rejected" if i % 10 == 0 else "draft"
            versions.append(row)
        db.executemany(f"INSERT INTO summary_versions ({', '.join(version_columns)}) VALUES "
                       f"({', '.join('?' * len(version_columns))})", versions)
        db.execute("DELETE FROM derived_state")  # as a history from before the value index holds nothing derived
    store = HistoryStore.open(tmp_path / "history.sqlite")  # derives the values of 99,999 new records
    try:
        overall = read_stats(store).rows()[0]
        assert overall.runs == runs and overall.rejected_share == pytest.approx(0.1, abs=0.001)
        assert len(find_cohort(store, parse_query("LVEF<40% and I50*")).members) == runs
        assert find_cohort(store, parse_query("LVEF<30%")).members == []
    finally:
        store.close()


def test_a_damaged_or_unwritable_research_key_is_one_line_and_never_replaced(store, cohort_store, tmp_path) -> None:
    from inference.errors import StorageError

    cohort = find_cohort(store, parse_query("I50*"))
    key = store.path.parent / KEY_FILE_NAME
    key.write_bytes(b"short")
    with pytest.raises(StorageError, match="已损坏") as caught:
        export_cohort(store, cohort, "csv", "cohort.csv")
    assert "\n" not in caught.value.message and key.read_bytes() == b"short"  # linkage is not silently broken
    assert not [e for e in store.audit_log() if e.action == "cohort_export"]  # nothing left, nothing audited
    key.unlink()
    key.mkdir()  # a key that cannot be read (as a folder of that name cannot, whoever runs this)
    with pytest.raises(StorageError, match="无法读取"):
        export_cohort(store, cohort, "csv", "cohort.csv")
