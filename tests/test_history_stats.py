"""Doctors' edits measured at signing, and the statistics read from them, on a real history file."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from inference.cli.main import main
from inference.history import derived
from inference.history.edit_measures import REWRITTEN_BELOW, measure_signing, section_edit
from inference.history.stats import read_stats, week_of
from inference.history.store import HistoryStore
from inference.record.summary import Diagnosis, ExamItem
from tests.history_helpers import SAMPLE_SUMMARY, sample_report


@pytest.fixture
def store(tmp_path: Path):
    opened = HistoryStore.open(tmp_path / "history.sqlite")
    yield opened
    opened.close()


def test_a_section_edit_counts_kept_characters_distance_and_values() -> None:
    draft = "查体:BP 150/90mmHg,HR 98次/分。"
    kept = section_edit("present_illness", draft, draft.replace("98", "88"))
    assert (kept.draft_chars, kept.kept_chars, kept.distance) == (len(draft), len(draft) - 1, 1)
    assert (kept.values_added, kept.values_removed) == (1, 1)  # 98次/分 → 88次/分 is one value out, one in
    assert kept.kept_share == pytest.approx((len(draft) - 1) / len(draft)) and not kept.rewritten
    rewritten = section_edit("chief_complaint", "反复胸闷气促3年,加重伴双下肢水肿1周", "双下肢水肿1周")
    assert rewritten.kept_share is not None and rewritten.kept_share < REWRITTEN_BELOW and rewritten.rewritten
    filled_in = section_edit("chief_complaint", "", "胸痛2小时")
    assert filled_in.kept_share is None and not filled_in.rewritten and filled_in.distance == 5


def test_codes_and_diagnoses_accepted_changed_added_and_removed_are_told_apart() -> None:
    draft_icd = [{"diagnosis": "慢性心力衰竭急性加重", "code": "I50.9"}, {"diagnosis": "高血压心脏病", "code": "I11"},
                 {"diagnosis": "肾功能不全", "code": "N19"}]
    signed = SAMPLE_SUMMARY.model_copy(update={"diagnoses": [Diagnosis(name="慢性心力衰竭急性加重"),
                                                             Diagnosis(name="高血压心脏病"), Diagnosis(name="2型糖尿病")]})
    signed_icd = [{"diagnosis": "慢性心力衰竭急性加重", "code": "I50.9"}, {"diagnosis": "高血压心脏病", "code": "I11.0"},
                  {"diagnosis": "2型糖尿病", "code": "E11.9"}]
    at = datetime(2026, 12, 1, 8, 0)
    measures = measure_signing(SAMPLE_SUMMARY, signed, draft_icd, signed_icd, at, at + timedelta(minutes=7),
                               shown_rules=["W3", "W3", "E1"], standing_rules=["W3"], overridden=1)
    assert (measures.codes_accepted, measures.codes_changed, measures.codes_added, measures.codes_removed) == (1, 1, 1, 1)
    assert (measures.diagnoses_added, measures.diagnoses_removed) == (1, 1)
    assert measures.seconds_to_sign == 420 and measures.findings_shown == {"W3": 2, "E1": 1}
    assert measures.findings_standing == {"W3": 1} and measures.overridden == 1
    assert type(measures).from_dict(json.loads(json.dumps(measures.as_dict()))) == measures


def _signed(store: HistoryStore, *, present_illness: str | None = None, signer: str = "张医生",
            standing: tuple[str, ...] | None = ("W3",)) -> int:
    report = sample_report()
    recorded = store.record_run(report.run_record(), {})
    if present_illness is not None:
        store.save_edit(recorded.document_id, SAMPLE_SUMMARY.model_copy(update={"present_illness": present_illness}),
                        [a.to_record() for a in report.icd])
    store.set_status(recorded.document_id, "signed", signer=signer, standing_rules=standing)
    return recorded.document_id


def test_signing_keeps_its_measures_and_statistics_group_them(store: HistoryStore) -> None:
    _signed(store, present_illness=SAMPLE_SUMMARY.present_illness + "LVEF 35%。", standing=("W3", "W3"))
    store.log_failure("GenerationError", 5, "demo.gguf")
    report = read_stats(store)
    (overall,) = report.rows()
    assert (overall.signed, overall.runs, overall.failed, overall.failure_share) == (1, 1, 1, 0.5)
    assert overall.values_added == 1 and overall.values_removed == 0 and overall.codes_accepted == 3
    assert overall.findings_standing == 2 and overall.latency_s == 5.0 and overall.tokens_per_s == 50.0
    sections = {row.group: row for row in report.rows("section")}
    assert sections["现病史"].edit_distance == len("LVEF 35%。") and sections["主诉"].edit_distance == 0
    assert sections["现病史"].kept_share == 1.0 and sections["现病史"].values_added == 1
    (doctor,) = report.rows("doctor")
    assert doctor.group == "张医生" and doctor.runs is None  # a run has no signing doctor
    assert [row.group for row in report.rows("model")] == ["demo.gguf"]
    assert [row.group for row in report.rows("week")] == [week_of(report.signings[0].at)]
    assert report.rules() == [("W3", 0, 2)]
    assert set(report.kept_by_week()) == {"主诉", "现病史", "辅助检查", "初步诊断"}


def test_rejected_and_stopped_runs_are_counted_against_all_runs(store: HistoryStore, monkeypatch) -> None:
    store.record_run(sample_report().run_record(), {})
    from dataclasses import replace
    rejected = replace(sample_report().run_record(), rejected=True)
    store.record_run(rejected, {})
    overall = read_stats(store).rows()[0]
    assert (overall.runs, overall.rejected_share, overall.signed, overall.kept_share) == (2, 0.5, 0, None)


def test_dates_bound_the_statistics(store: HistoryStore) -> None:
    _signed(store)
    today = datetime.now().date()
    assert read_stats(store, since=today, until=today).rows()[0].signed == 1
    assert read_stats(store, until=today - timedelta(days=1)).rows()[0].signed == 0


def test_history_from_before_the_measures_is_measured_when_opened(tmp_path: Path) -> None:
    """A 0004 history (no derived tables): migrating derives the value index and the signing measures."""
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(path)
    document_id = _signed(store, present_illness=SAMPLE_SUMMARY.present_illness + "LVEF 35%。")
    before = read_stats(store).rows("section")
    store.close()
    with sqlite3.connect(path) as db:
        for table in ("value_index", "derived_state", "signing_measures"):
            db.execute(f"DROP TABLE {table}")
        db.execute("ALTER TABLE documents DROP COLUMN provenance")  # 0006's, after these
        db.execute("UPDATE alembic_version SET version_num = '0004'")
    reopened = HistoryStore.open(path)
    try:
        assert any("备份" in notice for notice in reopened.notices)
        after = read_stats(reopened).rows("section")
        assert [row.as_dict() for row in after] == [row.as_dict() for row in before]
        with sqlite3.connect(path) as db:
            lvef = db.execute("SELECT value_number FROM value_index WHERE document_id = ? AND parameter = 'lvef'",
                              (document_id,)).fetchall()
        assert sorted(lvef) == [(35.0,), (38.0,)]
    finally:
        reopened.close()


def test_rows_written_by_older_code_are_derived_again(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(path)
    _signed(store)
    store.close()
    with sqlite3.connect(path) as db:  # rows as an older indexer and measurer would have left them
        db.execute("UPDATE value_index SET value_number = 0")
        db.execute("UPDATE signing_measures SET measures = '{}'")
    store = HistoryStore.open(path)  # today's code wrote the state: an open reads it and derives nothing
    assert not any("队列检索" in notice for notice in store.notices)
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT max(value_number) FROM value_index").fetchone() == (0,)
    monkeypatch.setattr(derived, "INDEXER", derived.INDEXER + 1)
    monkeypatch.setattr(derived, "MEASURER", derived.MEASURER + 1)
    store = HistoryStore.open(path)
    assert any("队列检索" in notice for notice in store.notices)
    assert read_stats(store).rows()[0].signed == 1
    store.close()
    with sqlite3.connect(path) as db:
        assert dict(db.execute("SELECT name, version FROM derived_state")) == \
            {"indexer": derived.INDEXER, "measurer": derived.MEASURER}
        assert db.execute("SELECT max(value_number) FROM value_index").fetchone() == (4500,)


def test_a_damaged_measures_row_is_left_out_not_a_traceback(store: HistoryStore) -> None:
    _signed(store)
    _signed(store, present_illness="同一病历再次签署。")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE signing_measures SET measures = '{\"sections\": 3}' "
                   "WHERE version_id = (SELECT max(version_id) FROM signing_measures)")
    assert read_stats(store).rows()[0].signed == 1


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own refusal of a choice
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_stats_command_prints_a_table_json_and_csv(capsys) -> None:
    code, out, _err = _cli(capsys, "stats")
    assert code == 0 and "没有记录" in out  # an empty history is a sentence, not an error
    store = HistoryStore.open()
    _signed(store, present_illness=SAMPLE_SUMMARY.present_illness + "LVEF 35%。")
    store.close()
    code, out, _err = _cli(capsys, "stats", "--by", "section")
    assert code == 0 and out.splitlines()[0].startswith("分组") and "现病史" in out
    code, out, _err = _cli(capsys, "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["rows"][0]["signed"] == 1 and data["rules"][0]["rule"] == "W3"
    code, out, _err = _cli(capsys, "stats", "--csv", "--by", "doctor")
    assert code == 0 and out.splitlines()[0].startswith("group,signed,kept_share") and "张医生" in out
    assert SAMPLE_SUMMARY.present_illness[:10] not in out + json.dumps(data, ensure_ascii=False)  # counts only


@pytest.mark.parametrize("argv, fragment", [
    (["stats", "--since", "2026-13-01"], "日期写法有误"),
    (["stats", "--since", "2026-12-05", "--until", "2026-12-01"], "晚于"),
    (["stats", "--json", "--csv"], "只能选一个"),
    (["stats", "--by", "patient"], "invalid choice"),
])
def test_bad_stats_arguments_are_one_line_and_exit_2(capsys, argv, fragment) -> None:
    code, _out, err = _cli(capsys, *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_a_real_model_run_signed_after_an_edit_is_measured_and_found_by_its_values(demo_engine, tmp_path) -> None:
    """The demo model's draft of the sample record, edited and signed: the measures and the value index follow
    what the model actually wrote."""
    from inference.documents import load_document
    from inference.history.cohort import find_cohort, parse_query
    from inference.history.note_rows import value_rows
    from inference.pipeline import run_pipeline
    from tests.conftest import SAMPLE_RECORD

    report = run_pipeline(load_document(SAMPLE_RECORD), demo_engine)
    store = HistoryStore.open(tmp_path / "history.sqlite")
    try:
        document_id = store.record_run(report.run_record(), {}).document_id
        draft = report.result.summary
        if not draft.diagnoses:
            draft = draft.model_copy(update={"diagnoses": [Diagnosis(name="慢性心力衰竭")]})
        edited = draft.model_copy(update={
            "present_illness": draft.present_illness + "医生补充：LVEF 35%。",
            "auxiliary_exams": [*draft.auxiliary_exams, ExamItem(name="肌酐", value="138", unit="μmol/L")]})
        store.save_edit(document_id, edited, [])
        store.set_status(document_id, "signed", signer="张医生", override="已核对", overridden=("演示模型",),
                         standing_rules=())
        (row,) = read_stats(store).rows()
        assert row.signed == 1 and row.runs == 1 and row.values_added >= 1 and row.signed_over == 1
        assert row.latency_s == pytest.approx(report.result.timings.total_s, abs=0.01)
        kept = {r.group: r for r in read_stats(store).rows("section")}["现病史"]
        assert kept.kept_share == 1.0 and kept.edit_distance == len("医生补充：LVEF 35%。")
        for value in value_rows(edited):
            if value.parameter == "lvef":
                found = find_cohort(store, parse_query(f"LVEF<={value.value_number}%")).members
                assert [m.document_id for m in found] == [document_id]
        assert [m.document_id for m in find_cohort(store, parse_query("肌酐>1.5 mg/dL")).members] == [document_id]
    finally:
        store.close()


def test_the_commands_groupings_are_the_statistics_groupings() -> None:
    """Stated twice so that `medbrief --help` does not load the history: held equal here."""
    from inference.cli import stats_command
    from inference.history import stats

    assert stats_command.GROUPINGS == stats.GROUPINGS
    assert set(stats.GROUPINGS) == {"section", *stats.GROUP_KEYS}
