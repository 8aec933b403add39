"""History in the desktop: runs recorded, edits autosaved, status, reopen, compare, audit, delete, one instance."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialog, QLabel

from desktop.app import open_history
from desktop.history_controller import HistoryController
from desktop.signing import Signature, SignatureDialog, SignatureRequest
from inference.history.store import HistoryStore
from tests.conftest import SAMPLE_RECORD
from tests.test_desktop import _generate, _ready, make_window, replace_by_search  # noqa: F401  (fixture)


def written(qtbot, controller: HistoryController) -> None:
    """Autosave and status changes are written off the GUI thread, in order: wait until they are."""
    qtbot.waitUntil(lambda: controller.writes.pending == 0, timeout=10_000)


@pytest.fixture
def history(tmp_path: Path):
    store = HistoryStore.open(tmp_path / "history.sqlite")
    yield store
    store.close()


class Signer:
    """Answers the signature dialog as a doctor would: records what it was asked, signs as 张医生."""

    def __init__(self) -> None:
        self.requests: list[SignatureRequest] = []
        self.answers: list[Signature | None] = []

    def __call__(self, _window, request: SignatureRequest) -> Signature | None:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else Signature("张医生", "已逐条核对" if request.blockers else "")


def _generated(qtbot, make_window, history, job=None, confirm=None):  # noqa: F811
    """A window with the history, the sample record generated: what most tests here start from."""
    window = make_window(job, confirm=confirm)
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    return window, controller


@pytest.fixture
def app_with_history(qtbot, make_window, history):  # noqa: F811
    answers: list[bool] = []
    window = make_window()
    controller = HistoryController(window, history, confirm=lambda _q: answers.pop(0) if answers else False,
                                   sign=Signer())
    controller.dock.toggleViewAction().trigger()  # the doctor opens 历史记录
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    qtbot.waitUntil(lambda: controller.panel.table.rowCount() == 1, timeout=5_000)  # listed off the GUI thread
    return window, controller, history, answers


def test_a_generated_summary_is_recorded_as_the_models_draft(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    records = store.list_records()
    assert len(records) == 1 and records[0].status == "draft"
    assert controller.document_id == records[0].document_id
    assert store.versions(controller.document_id)[0].origin == "model"
    qtbot.waitUntil(lambda: controller.panel.table.rowCount() == 1, timeout=5_000)


def test_edits_autosave_without_a_save_button_even_while_typing(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    editor = window.summary_pane.editors["chief_complaint"]
    started = time.monotonic()
    for i in range(10):  # keep typing for ~2.5 s without a pause
        editor.insertPlainText(f"字{i}")
        qtbot.wait(250)
    versions = store.versions(controller.document_id)
    assert len(versions) >= 2, "nothing autosaved during continuous typing"
    assert time.monotonic() - started < 5
    qtbot.waitUntil(lambda: "字9" in store.versions(controller.document_id)[-1].summary["chief_complaint"],
                    timeout=2_000)


def test_accepting_a_code_is_saved_with_its_provenance(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    panel = window.icd_panel
    panel.rows.selectRow(2)
    panel.candidates.setCurrentRow(1)
    panel.accept_button.click()
    written(qtbot, controller)
    latest = store.versions(controller.document_id)[-1]
    assert latest.icd[2]["provenance"] == "manual" and latest.origin == "code"
    assert store.audit_log(controller.document_id)[0].action == "accept_code"


def test_review_and_sign_move_the_status_forward(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    controller.review_action.trigger()
    controller.sign_action.trigger()
    written(qtbot, controller)
    assert [v.status for v in store.versions(controller.document_id)][-2:] == ["reviewed", "signed"]
    asked = controller._sign.requests
    assert [r.status for r in asked] == ["reviewed", "signed"]
    assert asked[0].signer == "" and asked[1].signer == "张医生"  # the name is asked once per session
    assert "3 个 ICD 编码仍待确认" in asked[1].blockers
    signed = next(e for e in store.audit_log(controller.document_id) if e.action == "status" and e.detail["new"] == "signed")
    assert signed.detail["signer"] == "张医生" and signed.detail["override"] == "已逐条核对" and signed.os_user
    controller.review_action.trigger()  # backwards is refused with a message, nothing changes
    written(qtbot, controller)
    assert "状态只能前进" in window.last_error
    assert store.versions(controller.document_id)[-1].status == "signed"


def test_signing_is_a_deliberate_act_cancelled_changes_nothing(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    controller._sign.answers.append(None)  # the doctor closes the dialog
    controller.sign_action.trigger()
    written(qtbot, controller)
    assert store.versions(controller.document_id)[-1].status == "draft"
    panel = window.icd_panel
    for row in range(panel.rows.rowCount()):  # every code confirmed: that blocker goes
        panel.rows.selectRow(row)
        panel.candidates.setCurrentRow(0)
        panel.accept_button.click()
    assert not any("ICD" in b for b in controller.signing_blockers())


def test_a_demo_draft_blocks_signing_also_when_reopened(qtbot, make_window, history) -> None:  # noqa: F811
    from tests.test_desktop import FakeJob

    window, controller = _generated(qtbot, make_window, history, FakeJob(tokens=3, demo=True))
    assert "草稿由演示模型生成，不可用于临床" in controller.signing_blockers()
    document_id = controller.document_id
    window.open_file(str(SAMPLE_RECORD))
    assert not any("演示" in b for b in controller.signing_blockers())
    controller.reopen(document_id)
    assert window.record.demo_draft and "草稿由演示模型生成，不可用于临床" in controller.signing_blockers()


def test_a_signed_version_is_immutable_until_the_doctor_starts_a_new_one(qtbot, make_window, history) -> None:  # noqa: F811
    answers: list[bool] = []
    window, controller = _generated(qtbot, make_window, history, confirm=lambda *_: answers.pop(0))
    panel = window.icd_panel
    replace_by_search(qtbot, panel, 1, "I11.9")  # the doctor's own code for 高血压心脏病
    panel.rows.selectRow(0)
    panel.accept_button.click()  # and a confirmed one for the heart failure
    controller.sign_action.trigger()
    written(qtbot, controller)
    document_id = controller.document_id
    assert window.record.signed and window.banners.signed.isVisibleTo(window) and not panel.isEnabled()
    assert all(editor.isReadOnly() for editor in window.summary_pane.editors.values())
    assert window.panes.summary_title.text() == "结构化摘要（已签署，只读）"  # not 可编辑 on a locked version

    answers.append(False)  # Ctrl+Enter on a signed record asks first; "取消" changes nothing
    window.generate_action.trigger()
    assert not window.generating and window.record.signed
    answers.append(True)
    _generate(qtbot, window)  # … "继续" regenerates: a new draft that keeps the doctor's codes
    assert not window.record.signed
    assert (panel.assignments[1].code, panel.assignments[1].provenance) == ("I11.9", "manual")
    assert panel.assignments[0].confirmed and panel.rows.item(0, 2).text() == "已确认"
    written(qtbot, controller)
    statuses = [v.status for v in history.versions(document_id)]
    assert statuses[-1] == "draft" and "signed" in statuses  # the signed version stays; new drafts follow it

    controller.reopen(document_id)  # the new draft: editable, the confirmations restored
    assert not window.record.signed and {0, 1} <= panel.confirmed_rows()
    first_signed = next(v for v in history.versions(document_id) if v.status == "signed")
    assert first_signed.icd[1]["code"] == "I11.9" and first_signed.icd[0]["confirmed"]


def test_amending_a_signed_summary_asks_and_keeps_the_signed_version(qtbot, make_window, history) -> None:  # noqa: F811
    answers: list[bool] = []
    window, controller = _generated(qtbot, make_window, history, confirm=lambda *_: answers.pop(0))
    controller.sign_action.trigger()
    written(qtbot, controller)
    controller.reopen(controller.document_id)
    assert window.record.signed and window.amend_action.isEnabled()
    answers.append(False)
    window.amend_action.trigger()
    assert window.record.signed
    answers.append(True)
    window.amend_action.trigger()
    assert not window.record.signed and not window.summary_pane.editors["chief_complaint"].isReadOnly()
    with qtbot.waitSignal(window.summary_edited, timeout=3_000):
        window.summary_pane.editors["chief_complaint"].setPlainText("医生修订的主诉")
    written(qtbot, controller)
    statuses = [v.status for v in history.versions(controller.document_id)]
    assert statuses[-1] == "draft" and "signed" in statuses


def test_the_signature_dialog_needs_a_name_and_a_reason_to_sign_over_blockers(qtbot) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    dialog = SignatureDialog(SignatureRequest("signed", "", ("2 个 ICD 编码仍待确认", "草稿由演示模型生成，不可用于临床")))
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok.text() == "签署" and not ok.isEnabled()
    assert "演示模型" in dialog.findChild(QLabel, "signing_blockers").text()
    dialog.name.setText("李医生")
    assert not ok.isEnabled()  # the blockers still stand
    dialog.override.setChecked(True)
    assert not ok.isEnabled()  # … and no reason given
    dialog.reason.setText("演示环境培训，不用于临床")
    assert ok.isEnabled()
    assert dialog.signature() == Signature("李医生", "演示环境培训，不用于临床")
    clean = SignatureDialog(SignatureRequest("reviewed", "李医生", ()))
    qtbot.addWidget(clean)
    assert clean.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()
    assert clean.signature() == Signature("李医生", "")


def test_a_rejected_draft_is_kept_as_rejected_and_cannot_be_reviewed_or_signed(qtbot, make_window, history) -> None:  # noqa: F811
    from tests.test_desktop import FakeJob
    from tests.test_draft_trust import OTHER_PATIENT

    window, controller = _generated(qtbot, make_window, history, FakeJob(tokens=3, summary=OTHER_PATIENT))
    assert history.list_records()[0].status == "rejected"
    assert not controller.sign_action.isEnabled() and not controller.review_action.isEnabled()
    controller.set_status("signed")
    written(qtbot, controller)
    assert history.list_records()[0].status == "rejected" and "不能审核或签署" in window.last_error
    window.open_file(str(SAMPLE_RECORD))
    assert not window.record.rejected
    controller.reopen(history.list_records()[0].document_id)
    assert window.record.rejected and not window.copy_action.isEnabled()


def test_search_filter_and_reopen_restore_the_panes(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    editor = window.summary_pane.editors["chief_complaint"]
    with qtbot.waitSignal(window.summary_edited, timeout=3_000):
        editor.setPlainText("医生改写的主诉")
    written(qtbot, controller)
    window.set_document_text('患者女,30岁,因"咳嗽2天"就诊。')
    assert controller.document_id is None
    panel = controller.panel
    panel.search_box.setText("心衰")
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):  # queried off the GUI thread
        panel.refresh()
    assert panel.table.rowCount() == 1
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):
        panel.status_filter.setCurrentIndex(panel.status_filter.findData("signed"))
    assert panel.table.rowCount() == 0
    with qtbot.waitSignal(panel.refreshed, timeout=5_000):
        panel.status_filter.setCurrentIndex(0)
    panel.table.selectRow(0)
    panel.open_selected()
    assert window.summary_pane.editors["chief_complaint"].toPlainText() == "医生改写的主诉"
    assert "NT-proBNP 4500 pg/mL" in window.document_pane.toPlainText()
    assert window.icd_panel.rows.rowCount() == 3
    assert controller.document_id == store.list_records()[0].document_id


def test_compare_shows_draft_and_final_side_by_side(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    editor = window.summary_pane.editors["chief_complaint"]
    with qtbot.waitSignal(window.summary_edited, timeout=3_000):
        editor.setPlainText("医生改写的主诉")
    written(qtbot, controller)
    panel = controller.panel
    panel.table.selectRow(0)
    panel.compare_selected()
    dialog = panel.findChildren(QDialog)[-1]  # the compare window just opened
    draft = dialog.findChild(type(editor), "compare_draft")
    final = dialog.findChild(type(editor), "compare_final")
    assert "【主诉】反复胸闷气促3年" in draft.toPlainText()
    assert "【主诉】医生改写的主诉" in final.toPlainText()
    mark = final.marks[0]
    assert final.toPlainText()[mark.start:mark.end] == "【主诉】医生改写的主诉"


def test_compare_shows_the_doctors_code_changes_too(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    panel = window.icd_panel
    replace_by_search(qtbot, panel, 1, "I11.9")
    written(qtbot, controller)
    controller.panel.table.selectRow(0)
    controller.panel.compare_selected()
    dialog = controller.panel.findChildren(QDialog)[-1]
    final = dialog.findChild(type(window.summary_pane.editors["diagnoses"]), "compare_final")
    changed = [final.toPlainText()[m.start:m.end] for m in final.marks]
    assert changed == ["高血压心脏病：I11.9 高血压心脏病不伴有（充血性）心力衰竭（已确认）"]
    assert "已签署" not in dialog.windowTitle() and "草稿" in dialog.windowTitle()


def test_delete_asks_first_and_removes_the_text_from_search(qtbot, app_with_history) -> None:
    window, controller, store, answers = app_with_history
    panel = controller.panel
    panel.table.selectRow(0)
    answers.append(False)
    panel.delete_selected()
    assert len(store.list_records()) == 1
    answers.append(True)
    panel.table.selectRow(0)
    panel.delete_selected()
    assert store.list_records() == [] and store.search("NT-proBNP") == []
    qtbot.waitUntil(lambda: panel.table.rowCount() == 0, timeout=5_000)
    panel.show_audit()
    audit = panel.findChildren(QDialog)[-1].findChild(type(panel.table), "audit_rows")
    assert audit.item(0, 2).text() == "删除" and audit.item(0, 4).text() == "删除 sample_record.txt"
    assert not any("{" in audit.item(row, 4).text() for row in range(audit.rowCount()))  # words, not dicts


def test_audit_details_read_as_words_in_local_time() -> None:
    from datetime import datetime, timezone

    from desktop.history_panel import audit_detail, local_time

    assert audit_detail("status", {"old": "reviewed", "new": "signed", "signer": "张医生", "override": "已核对"}) == \
        "已审核 → 已签署，签署医生 张医生，越过提示的理由：已核对"
    assert audit_detail("export", {"format": "fhir", "target": "/tmp/a.json"}) == "导出为 fhir：/tmp/a.json"
    utc = datetime(2026, 11, 28, 1, 2, 3)
    assert local_time(utc) == f"{utc.replace(tzinfo=timezone.utc).astimezone():%Y-%m-%d %H:%M:%S}"


def test_export_is_audited(app_with_history, tmp_path: Path) -> None:
    window, controller, store, _ = app_with_history
    assert window.exports.to_file(tmp_path / "s.fhir.json", "fhir")
    event = store.audit_log()[0]
    assert event.action == "export" and event.detail["format"] == "fhir"


def test_only_one_instance_runs_on_a_database(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MEDBRIEF_DATA_DIR", str(tmp_path))
    errors: list[tuple[str, str]] = []
    lock, store, code = open_history(lambda title, message: errors.append((title, message)))
    assert store is not None and code == 0
    try:
        second = open_history(lambda title, message: errors.append((title, message)))
        assert second[1] is None and second[2] == 7
        assert "another MedBrief instance" in errors[0][1]
    finally:
        store.close()
        lock.release()


def test_database_from_a_newer_version_stops_the_app_with_a_message(tmp_path: Path, monkeypatch) -> None:
    import sqlite3

    monkeypatch.setenv("MEDBRIEF_DATA_DIR", str(tmp_path))
    HistoryStore.open(tmp_path / "history.sqlite").close()
    raw = sqlite3.connect(tmp_path / "history.sqlite")
    raw.execute("UPDATE alembic_version SET version_num = 'ffff'")
    raw.commit()
    raw.close()
    errors: list[tuple[str, str]] = []
    _lock, store, code = open_history(lambda title, message: errors.append((title, message)))
    assert store is None and code == 7 and "newer" in errors[0][1]


def test_a_run_the_history_could_not_take_stays_in_the_window_and_is_saved_at_the_next_edit(
        qtbot, make_window, history, monkeypatch) -> None:  # noqa: F811
    from inference.errors import StorageError

    real_record_run = history.record_run
    failures = ["磁盘已满，未能保存 / disk full: not saved"]

    def full_disk_once(*args, **kwargs):
        if failures:
            raise StorageError(failures.pop())
        return real_record_run(*args, **kwargs)

    monkeypatch.setattr(history, "record_run", full_disk_once)
    window = make_window()
    controller = HistoryController(window, history)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    assert "磁盘已满" in window.last_error and "摘要仍在窗口中" in window.last_error
    assert history.list_records() == [] and controller.document_id is None
    editor = window.summary_pane.editors["chief_complaint"]
    assert editor.toPlainText()  # the draft is still on screen
    editor.insertPlainText("（医生补充）")
    qtbot.waitUntil(lambda: controller.document_id is not None, timeout=5_000)
    versions = history.versions(controller.document_id)
    assert versions[0].origin == "model"
    qtbot.waitUntil(lambda: "医生补充" in history.versions(controller.document_id)[-1].summary["chief_complaint"],
                    timeout=5_000)


def test_opening_another_record_says_where_the_last_summary_went(qtbot, app_with_history) -> None:
    window, controller, store, _ = app_with_history
    window.set_document_text("患者女，50岁，头痛2天。")
    assert "上一份摘要已保存在历史记录中" in window.statusBar().currentMessage()
    assert len(store.list_records()) == 1
