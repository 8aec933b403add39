"""The local history store on a real SQLite file: versions, search, audit, export, and every fault."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from inference.errors import StorageError
from inference.history.exports import export_record, export_reviewed_jsonl
from inference.history.instance_lock import InstanceLock
from inference.history.schema_version import alembic_config, head_revision
from inference.history.store import HistoryStore
from inference.record.summary import Diagnosis, StructuredSummary
from tests.conftest import REPO_ROOT
from tests.history_helpers import SAMPLE_SUMMARY, sample_report


@pytest.fixture
def store(tmp_path: Path):
    opened = HistoryStore.open(tmp_path / "history.sqlite")
    yield opened
    opened.close()


def edited(summary: StructuredSummary, **changes: object) -> StructuredSummary:
    return summary.model_copy(update=changes)


def test_a_run_keeps_source_model_draft_findings_and_codes(store: HistoryStore) -> None:
    report = sample_report()
    recorded = store.record_run(report.run_record(), {"n_ctx": 32768, "n_gpu_layers": -1}, "abc123")
    run_id, version_id = recorded.run_id, recorded.version_id
    record = store.list_records()[0]
    assert recorded.document_id == record.document_id
    assert (record.status, record.versions, record.icd_codes) == ("draft", 1, "I50.9 I11 N19")
    document = store.document(record.document_id)
    assert document.text == report.document.text and document.sha256 == report.document.sha256
    run = store.runs(record.document_id)[0]
    assert run.id == run_id and run.model_hash_prefix == "abc123" and run.prompt_version == "summary-test"
    assert run.engine_params["n_ctx"] == 32768 and run.timings["ttft_s"] == 1.0
    assert run.draft == SAMPLE_SUMMARY.model_dump()
    assert run.icd[0]["code"] == "I50.9" and run.icd[0]["provenance"] == "model_tool_call"
    assert store.versions(record.document_id)[0].id == version_id


def test_every_edit_is_a_new_version_and_nothing_is_overwritten(store: HistoryStore) -> None:
    store.record_run(sample_report().run_record(), {})
    document_id = store.list_records()[0].document_id
    changed = edited(SAMPLE_SUMMARY, chief_complaint="反复胸闷气促3年")
    first = store.save_edit(document_id, changed, [])
    assert store.save_edit(document_id, changed, []) is None  # autosave with no change writes nothing
    second = store.save_edit(document_id, edited(changed, present_illness="修改"), [])
    versions = store.versions(document_id)
    assert [v.number for v in versions] == [1, 2, 3] and [v.id for v in versions[1:]] == [first, second]
    assert versions[0].summary == SAMPLE_SUMMARY.model_dump()  # the model's draft is intact
    raw = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE summary_versions SET status = 'signed'")
    raw.close()


def test_status_moves_forward_and_an_edit_after_signing_starts_a_new_draft(store: HistoryStore) -> None:
    store.record_run(sample_report().run_record(), {})
    document_id = store.list_records()[0].document_id
    store.set_status(document_id, "reviewed")
    with pytest.raises(StorageError, match="name"):  # a signature names the doctor
        store.set_status(document_id, "signed", signer="  ")
    store.set_status(document_id, "signed", signer="张医生")
    assert store.audit_log(document_id)[0].detail["signer"] == "张医生"
    with pytest.raises(StorageError, match="forward"):
        store.set_status(document_id, "reviewed")
    store.save_edit(document_id, edited(SAMPLE_SUMMARY, chief_complaint="补充"), [])
    statuses = [v.status for v in store.versions(document_id)]
    assert statuses == ["draft", "reviewed", "signed", "draft"]
    draft, final = store.draft_and_final(document_id)
    assert draft.origin == "model" and final.summary["chief_complaint"] == "补充"


def test_audit_log_records_actions_with_user_and_refuses_changes(store: HistoryStore, tmp_path: Path) -> None:
    store.record_run(sample_report().run_record(), {})
    document_id = store.list_records()[0].document_id
    store.save_edit(document_id, edited(SAMPLE_SUMMARY, chief_complaint="x"), [], action="accept_code")
    store.set_status(document_id, "reviewed")
    export_record(store, document_id, "fhir")
    store.delete_record(document_id)
    actions = [event.action for event in store.audit_log()]
    assert actions == ["delete", "export", "status", "accept_code", "generate"]
    assert all(event.os_user for event in store.audit_log())
    raw = sqlite3.connect(store.path)
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute(statement)
        raw.rollback()
    raw.close()


def test_full_text_search_finds_chinese_in_documents_and_summaries(store: HistoryStore, tmp_path: Path) -> None:
    store.record_run(sample_report().run_record(), {})
    other = tmp_path / "other.txt"
    other.write_text('患者女,30岁,因"咳嗽2天"就诊。诊断:社区获得性肺炎。', encoding="utf-8")
    store.record_run(sample_report(other, StructuredSummary(
        chief_complaint="咳嗽2天", present_illness="原文未记载", auxiliary_exams=[],
        diagnoses=[Diagnosis(name="社区获得性肺炎")])).run_record(), {})
    assert [r.file_name for r in store.search("凹陷性水肿")] == ["sample_record.txt"]
    assert [r.file_name for r in store.search("肺炎")] == ["other.txt"]  # two characters
    assert [r.file_name for r in store.search("心衰")] == ["sample_record.txt"]  # 心衰 → 心力衰竭
    assert store.search("咳嗽2天", diagnosis="肺炎")[0].file_name == "other.txt"
    assert store.list_records(icd_code="I11")[0].file_name == "sample_record.txt"
    assert store.list_records(status="signed") == []
    sample_id = store.search("凹陷性水肿")[0].document_id
    store.delete_record(sample_id)
    assert store.search("凹陷性水肿") == [] and store.search("NT-proBNP") == []
    raw = sqlite3.connect(store.path)
    assert raw.execute("SELECT count(*) FROM search_index WHERE document_id = ?", (sample_id,)).fetchone()[0] == 0
    raw.close()


def test_kill_9_mid_write_loses_nothing_committed_and_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(path)
    store.record_run(sample_report().run_record(), {})
    document_id = store.list_records()[0].document_id
    store.close()
    writer = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests" / "history_writer.py"), str(path),
                               str(document_id)], stdout=subprocess.PIPE, text=True)
    committed: list[int] = []
    assert writer.stdout is not None
    while len(committed) < 40:
        line = writer.stdout.readline()
        assert line, "writer died early"
        committed.append(int(line))
    os.kill(writer.pid, signal.SIGKILL)  # mid-transaction: it was writing the next version
    writer.wait()
    reopened = HistoryStore.open(path)
    try:
        assert reopened.integrity_ok()
        ids = {v.id for v in reopened.versions(document_id)}
        assert set(committed) <= ids
        assert reopened.notices == []
    finally:
        reopened.close()


def test_corrupt_database_is_moved_aside_and_a_fresh_one_created(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    store = HistoryStore.open(path)
    try:
        assert store.notices and "损坏" in store.notices[0]
        aside = list(tmp_path.glob("history.sqlite.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
        store.record_run(sample_report().run_record(), {})
        assert len(store.list_records()) == 1
    finally:
        store.close()


def test_damaged_pages_are_detected_too(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    store = HistoryStore.open(path)
    store.record_run(sample_report().run_record(), {})
    store.close()
    data = bytearray(path.read_bytes())
    for offset in range(4096, min(len(data), 4096 * 4)):
        data[offset] = 0xFF  # trash b-tree pages, keep the header
    path.write_bytes(bytes(data))
    reopened = HistoryStore.open(path)
    try:
        assert reopened.notices and reopened.recovered
        # The trashed pages held the documents table; the record's text comes back from the search index.
        [record] = reopened.list_records()
        assert record.file_name == "恢复的病历-1.txt"
        assert reopened.document(record.document_id).text == sample_report().document.text
    finally:
        reopened.close()


def test_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    HistoryStore.open(path).close()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE alembic_version SET version_num = '9999'")
    raw.commit()
    raw.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(StorageError, match="newer"):
        HistoryStore.open(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_migration_backs_up_the_file_first_and_keeps_the_data(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    raw = sqlite3.connect(path)
    raw.close()
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.exec_driver_sql(
            "INSERT INTO documents (file_name, sha256, encoding, text, imported_at) "
            "VALUES ('old.txt', 'abc', 'utf-8', '旧病历：慢性心力衰竭', '2026-01-01 00:00:00')")
    engine.dispose()
    store = HistoryStore.open(path)
    try:
        assert any("备份" in notice for notice in store.notices)
        backups = list(tmp_path.glob("history.sqlite.bak-0001-*"))
        assert len(backups) == 1
        old = sqlite3.connect(backups[0])
        assert old.execute("SELECT text FROM documents").fetchone()[0] == "旧病历：慢性心力衰竭"
        old.close()
        assert store.document(1).text == "旧病历：慢性心力衰竭"
        raw = sqlite3.connect(path)
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
        assert raw.execute("SELECT document_id FROM search_index WHERE search_index MATCH '心力衰竭'").fetchone()
        raw.close()
    finally:
        store.close()


def test_disk_full_is_a_clear_error_and_earlier_versions_survive(store: HistoryStore) -> None:
    from sqlalchemy import event

    store.record_run(sample_report().run_record(), {})
    document_id = store.list_records()[0].document_id
    pages = sqlite3.connect(store.path).execute("PRAGMA page_count").fetchone()[0]
    event.listen(store._engine, "connect", lambda c, _r: c.execute(f"PRAGMA max_page_count = {pages + 1}"))
    store._engine.dispose()
    huge = edited(SAMPLE_SUMMARY, present_illness="很长的现病史" * 20_000)
    with pytest.raises(StorageError, match="disk full"):
        store.save_edit(document_id, huge, [])
    assert len(store.versions(document_id)) == 1
    assert store.integrity_ok()


def test_second_instance_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "instance.lock")
    first.acquire()
    try:
        with pytest.raises(StorageError, match="another MedBrief instance"):
            InstanceLock(tmp_path / "instance.lock").acquire()
    finally:
        first.release()
    again = InstanceLock(tmp_path / "instance.lock")
    again.acquire()  # released on exit, so the next start works
    again.release()


def test_reviewed_summaries_export_as_jsonl_with_draft_and_final(store: HistoryStore, tmp_path: Path) -> None:
    store.record_run(sample_report().run_record(), {})
    document_id = store.list_records()[0].document_id
    store.save_edit(document_id, edited(SAMPLE_SUMMARY, chief_complaint="医生修改后的主诉"), [])
    store.set_status(document_id, "reviewed")
    target = tmp_path / "cohort.jsonl"
    assert export_reviewed_jsonl(store, target) == (1, [])
    line = json.loads(target.read_text(encoding="utf-8").splitlines()[0])
    assert line["model_draft"]["chief_complaint"] == SAMPLE_SUMMARY.chief_complaint
    assert line["final"]["chief_complaint"] == "医生修改后的主诉"
    assert "NT-proBNP 4500 pg/mL" in line["source"] and line["status"] == "reviewed"


def test_fhir_bundle_has_a_composition_and_coded_conditions(store: HistoryStore) -> None:
    store.record_run(sample_report().run_record(), {})
    bundle = json.loads(export_record(store, store.list_records()[0].document_id, "fhir"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "document"
    resources = [entry["resource"] for entry in bundle["entry"]]
    composition = resources[0]
    assert composition["resourceType"] == "Composition"
    assert [s["title"] for s in composition["section"]] == ["主诉", "现病史", "辅助检查", "初步诊断"]
    conditions = [r for r in resources if r["resourceType"] == "Condition"]
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["I50.9", "I11", "N19"]
    assert {e["reference"] for e in composition["section"][3]["entry"]} == {
        f"urn:uuid:{c['id']}" for c in conditions}


def test_cli_history_commands_and_errors(tmp_path: Path) -> None:
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path)}
    store = HistoryStore.open(tmp_path / "history.sqlite")
    store.record_run(sample_report().run_record(), {})
    store.close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "inference", "history", *args], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=60, env=env)

    listing = run("list")
    assert listing.returncode == 0 and "sample_record.txt" in listing.stdout
    assert "sample_record.txt" in run("search", "心衰").stdout
    assert "【主诉】" in run("show", "1").stdout
    assert run("export", "1", "--format", "md").stdout.startswith("# 病历摘要")
    missing = run("show", "42")
    assert missing.returncode == 7 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    for args, code in ((("export", "42"), 7), (("export", "1", "--out", "/nonexistent-dir/x.md"), 3),
                       (("export", "--reviewed", "--out", "/nonexistent-dir/x.jsonl"), 3)):
        failed = run(*args)
        assert failed.returncode == code and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
    store = HistoryStore.open(tmp_path / "history.sqlite")
    assert [event.action for event in store.audit_log()] == ["export", "generate"]  # failed exports not audited
    store.close()


def test_an_export_of_a_demo_models_draft_carries_the_demo_mark(store: HistoryStore, tmp_path: Path) -> None:
    from inference.export import DEMO_MARK
    from tests.conftest import SAMPLE_RECORD

    demo = sample_report()
    demo.result.model["demo"] = True
    demo_id = store.record_run(demo.run_record(), {}).document_id
    another_record = tmp_path / "another.txt"
    another_record.write_text(SAMPLE_RECORD.read_text(encoding="utf-8") + "\n出院带药：阿司匹林。", encoding="utf-8")
    other = store.record_run(sample_report(another_record).run_record(), {}).document_id
    assert store.from_demo(demo_id) and not store.from_demo(other)
    assert export_record(store, demo_id, "txt").startswith(DEMO_MARK)
    assert json.loads(export_record(store, demo_id, "json"))["demo"] is True
    assert DEMO_MARK not in export_record(store, other, "txt")
