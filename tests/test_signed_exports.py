"""After signing: what leaves the PC says what it is — the status and version, the signing doctor and the time,
what stood when it was signed and the reason given — in every format, from the history and from the window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.history_controller import HistoryController
from inference.export import EXPORT_FORMATS
from inference.history.exports import export_record
from inference.history.store import HistoryStore
from tests.conftest import REPO_ROOT, SAMPLE_RECORD
from tests.history_helpers import SAMPLE_SUMMARY, sample_report
from tests.test_desktop import _generate, _ready, make_window, replace_by_search  # noqa: F401  (fixture)
from tests.test_desktop_history import Signer, history, written  # noqa: F401  (fixture)

OVERRIDDEN = ("核对发现 1 处错误尚未处理：数值与原文不符", "3 个 ICD 编码仍待确认")


@pytest.fixture
def store(tmp_path: Path):
    opened = HistoryStore.open(tmp_path / "history.sqlite")
    yield opened
    opened.close()


def _signed_over_blockers(store: HistoryStore) -> int:
    document_id = store.record_run(sample_report().run_record(), {}).document_id
    store.set_status(document_id, "signed", signer="张医生", override="已电话核实肌酐", overridden=OVERRIDDEN)
    return document_id


def test_every_format_of_a_signed_version_names_the_signer_the_time_and_what_was_signed_over(store) -> None:
    document_id = _signed_over_blockers(store)
    for fmt in EXPORT_FORMATS:
        text = export_record(store, document_id, fmt)
        for expected in ("张医生", "已电话核实肌酐", *OVERRIDDEN):
            assert expected in text, (fmt, expected)
    text = export_record(store, document_id, "txt")
    assert "状态：已签署（第 2 版）" in text and "签署医生：张医生" in text
    data = json.loads(export_record(store, document_id, "json"))
    assert data["status"] == "signed" and data["version"] == 2
    assert data["attestation"]["signer"] == "张医生" and data["attestation"]["overridden"] == list(OVERRIDDEN)
    assert data["attestation"]["at"].endswith("+00:00") and data["attestation"]["os_user"]
    composition = json.loads(export_record(store, document_id, "fhir"))["entry"][0]["resource"]
    assert composition["status"] == "final"
    assert composition["attester"][0]["mode"] == "legal" and composition["attester"][0]["party"]["display"] == "张医生"
    assert composition["author"][0]["display"] == "张医生"
    assert composition["section"][-1]["title"] == "签署时未处理的问题"


def test_a_draft_is_exported_as_a_draft_with_the_findings_that_stand(store) -> None:
    document_id = store.record_run(sample_report().run_record(), {}).document_id
    wrong = SAMPLE_SUMMARY.model_copy(update={"chief_complaint": "反复胸闷气促7年"})  # 3年 in the record
    store.save_edit(document_id, wrong, [])
    data = json.loads(export_record(store, document_id, "json"))
    assert data["status"] == "draft" and data["attestation"] is None
    assert any(f["section"] == "chief_complaint" and f["severity"] == "error" for f in data["findings"])
    composition = json.loads(export_record(store, document_id, "fhir"))["entry"][0]["resource"]
    assert composition["status"] == "preliminary" and "attester" not in composition
    assert "状态：草稿" in export_record(store, document_id, "txt")


def test_the_default_export_is_the_signed_version_not_a_draft_begun_after_it(store) -> None:
    document_id = _signed_over_blockers(store)
    store.save_edit(document_id, SAMPLE_SUMMARY.model_copy(update={"chief_complaint": "补充主诉"}), [])
    default = json.loads(export_record(store, document_id, "json"))
    assert default["status"] == "signed" and default["chief_complaint"] == SAMPLE_SUMMARY.chief_complaint
    latest = json.loads(export_record(store, document_id, "json", number=3))
    assert latest["status"] == "draft" and latest["chief_complaint"] == "补充主诉"


def test_cli_exports_a_chosen_version_and_refuses_one_that_does_not_exist(tmp_path: Path) -> None:
    env = {**os.environ, "MEDBRIEF_DATA_DIR": str(tmp_path)}
    store = HistoryStore.open(tmp_path / "history.sqlite")
    document_id = _signed_over_blockers(store)
    store.close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "inference", "history", *args], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=60, env=env)

    first = run("export", str(document_id), "--format", "json", "--version", "1")
    assert first.returncode == 0 and json.loads(first.stdout)["status"] == "draft"
    assert "签署医生：张医生" in run("export", str(document_id)).stdout
    shown = run("show", str(document_id))
    assert shown.returncode == 0 and "张医生" in shown.stdout and "已签署" in shown.stdout
    missing = run("export", str(document_id), "--version", "9")
    assert missing.returncode == 7 and "第 9 版" in missing.stderr and "Traceback" not in missing.stderr


def test_the_window_exports_what_the_doctor_signed_over_and_a_reopened_record_too(
        qtbot, make_window, history, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    blockers = controller.signing_blockers()
    assert blockers  # the fake draft's codes are not confirmed yet
    controller.sign_action.trigger()
    written(qtbot, controller)
    qtbot.waitUntil(lambda: window.record.signed, timeout=5_000)
    assert window.exports.to_file(tmp_path / "signed.json", "json")
    assert (tmp_path / "signed.json").stat().st_mode & 0o777 == 0o600  # patient data on a shared PC
    data = json.loads((tmp_path / "signed.json").read_text(encoding="utf-8"))
    assert data["status"] == "signed" and data["attestation"]["signer"] == "张医生"
    assert data["attestation"]["override"] == "已逐条核对" and data["attestation"]["overridden"] == list(blockers)

    document_id = controller.document_id
    window.open_file(str(SAMPLE_RECORD))
    controller.reopen(document_id)
    assert window.record.attestation is not None and window.record.attestation.overridden == blockers
    assert window.exports.to_file(tmp_path / "reopened.txt", "txt")
    assert "签署医生：张医生" in (tmp_path / "reopened.txt").read_text(encoding="utf-8")


def test_an_edit_after_review_exports_as_a_draft_again(qtbot, make_window, history, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    controller.review_action.trigger()
    written(qtbot, controller)
    qtbot.waitUntil(lambda: window.record.attestation is not None, timeout=5_000)
    assert window.exports.to_file(tmp_path / "reviewed.md", "md")
    assert "状态：已审核" in (tmp_path / "reviewed.md").read_text(encoding="utf-8")
    with qtbot.waitSignal(window.summary_edited, timeout=3_000):
        window.summary_pane.editors["chief_complaint"].setPlainText("医生修订的主诉")
    assert window.exports.to_file(tmp_path / "edited.md", "md")
    text = (tmp_path / "edited.md").read_text(encoding="utf-8")
    assert "状态：草稿" in text and "审核医生" not in text


def test_the_file_dialogs_speak_chinese_and_open_where_the_doctor_last_saved(qtbot, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QFileDialog, QWidget

    from desktop.file_dialogs import file_dialog, last_folder, remember_folder

    parent = QWidget()
    qtbot.addWidget(parent)
    dialog = file_dialog(parent, "导出摘要", "save", ["病历文本 (*.txt)"], "摘要-x.txt")
    assert dialog.labelText(QFileDialog.DialogLabel.LookIn) == "查找范围："
    assert dialog.labelText(QFileDialog.DialogLabel.FileType) == "文件类型："
    assert dialog.labelText(QFileDialog.DialogLabel.Accept) == "保存"
    folder = tmp_path / "出院小结"
    folder.mkdir()
    remember_folder("save", folder / "摘要-x.txt")
    assert last_folder("save") == folder and last_folder("open") == Path.home()
    assert file_dialog(parent, "导出摘要", "save", ["病历文本 (*.txt)"]).directory().absolutePath() == str(folder)


def test_a_category_picked_from_a_search_is_not_confirmed_and_blocks_signing(qtbot, make_window, history) -> None:  # noqa: F811
    window = make_window()
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    panel = window.icd_panel
    assert replace_by_search(qtbot, panel, 0, "I50").startswith("I50 ")
    assert panel.assignments[0].code == "I50" and panel.rows.item(0, 2).text() == "须选末级"
    assert any("I50" in b and "末级" in b for b in controller.signing_blockers())
    panel.candidates.setCurrentRow(next(i for i in range(panel.candidates.count())
                                        if panel.candidates.item(i).text().startswith("I50.9")))
    panel.accept_button.click()
    assert panel.rows.item(0, 2).text() == "已确认"
    assert not any("末级" in b for b in controller.signing_blockers())


def test_a_code_the_records_patient_cannot_have_blocks_signing(qtbot, make_window, history) -> None:  # noqa: F811
    window = make_window()
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))  # 患者男性,68岁
    _generate(qtbot, window)
    panel = window.icd_panel
    replace_by_search(qtbot, panel, 2, "O26.9")
    assert panel.assignments[2].code == "O26.9"
    assert any("O26.9" in b for b in controller.signing_blockers())


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage\n[[[\n", b"[folders]\nexport=/no/such/folder\n",
                                     b"[folders]\nexport=a, b, c\n", b"[folders]\nexport=" + b"x" * 100_000 + b"\n"])
def test_a_damaged_desktop_state_file_opens_the_dialogs_at_home(qtbot, content: bytes) -> None:
    from desktop.file_dialogs import last_folder
    from inference.paths import config_dir

    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "desktop-state.ini").write_bytes(content)
    assert last_folder("save") == Path.home() and last_folder("open") == Path.home()
