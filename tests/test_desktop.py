"""The desktop app, offscreen with pytest-qt: UI logic on a fake engine, and one end-to-end run on the
real demo model. The fake engine only replaces the model; tables, validation and lookups are real."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication

from desktop.app import build_window
from desktop.main_window import MainWindow
from inference.checks.validation import validate
from inference.documents import Document
from inference.errors import GenerationCancelled, GenerationError, ModelError
from inference.icd.coding import MANUAL, direct_assignment, to_final_codes
from inference.icd.precision import is_leaf
from inference.icd.table import open_table
from inference.llm.engine import EngineInfo
from inference.llm.settings import AppConfig, EngineSettings
from inference.pipeline import BriefReport
from inference.progress import SUMMARIZING, Progress, RunContext
from inference.record.summary import StructuredSummary
from inference.summary.summarizer import SummaryResult, Timings, retry_part_tokens
from tests.conftest import SAMPLE_RECORD
from tests.history_helpers import SAMPLE_SUMMARY


def fake_info(demo: bool = True) -> EngineInfo:
    return EngineInfo(model_path="/models/fake.gguf", model_name="fake", architecture="qwen2", quantization="Q4_K_M",
                      file_size=1, is_demo=demo, n_ctx=32768, n_ctx_train=32768, backend="CPU",
                      gpu_layers_offloaded=0, total_layers=25, flash_attn=True, load_s=0.01)


class FakeEngine:
    def __init__(self, settings: EngineSettings) -> None:
        if settings.model_path is not None and "missing" in str(settings.model_path):
            raise ModelError(f"找不到模型文件 / model file not found: {settings.model_path}")
        self.info = fake_info(demo=settings.model_path is None)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeJob:
    """Streams ``tokens`` pieces, ``delay`` apart, honouring cancel; then returns a real report."""

    def __init__(self, tokens: int = 40, delay: float = 0.01, error: str | None = None,
                 summary: StructuredSummary = SAMPLE_SUMMARY, demo: bool = False, pieces: list[str] | None = None) -> None:
        self.tokens, self.delay, self.error, self.summary, self.demo = tokens, delay, error, summary, demo
        self.pieces = pieces or [f"片段{i} " for i in range(tokens)]  # what the model streams
        self.thread_names: list[str] = []
        self.part_budgets: list[int | None] = []

    def model(self) -> dict[str, Any]:
        """As the engine describes itself: the demo model also by its file's name."""
        from inference.llm.demo_model import demo_model_path

        return {"demo": True, "file": demo_model_path().name} if self.demo else {"demo": False}

    def __call__(self, document: Document, engine: Any, context: RunContext, *, table, part_budget=None,
                 resume=None) -> BriefReport:
        self.thread_names.append(threading.current_thread() is threading.main_thread())
        self.part_budgets.append(part_budget)
        context.on_progress(Progress(SUMMARIZING, 1, 1, 0, len(self.pieces)))
        for piece in self.pieces:
            if context.cancel.is_set():
                raise GenerationCancelled("已停止")
            context.stream(piece)
            time.sleep(self.delay)
        if self.error:
            raise GenerationError(self.error)
        # As the pipeline's coding ends: each code taken to its leaf over the record's diagnoses.
        icd = to_final_codes([direct_assignment(d.name, table) for d in self.summary.diagnoses], table)
        result = SummaryResult(summary=self.summary, prompt_version="test", model=self.model(),
                               timings=Timings(0.0, 0.1, 0.5, 800, 200), raw_output="{}")
        return BriefReport(document=document, result=result, icd=icd, validation=validate(self.summary, document.text),
                           elapsed_s=1.25)


def _generated(qtbot, window: MainWindow) -> BriefReport:
    """The model ready, the sample record open, a summary generated: where most tests start."""
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    return _generate(qtbot, window)


def replace_by_search(qtbot, panel, row: int, query: str) -> str:  # type: ignore[no-untyped-def]
    """The doctor selects a row, searches the code table and takes the first result: returns its text."""
    panel.rows.selectRow(row)
    panel.search_box.setText(query)
    with qtbot.waitSignal(panel.searched, timeout=10_000):
        panel.search()
    first = panel.search_results.item(0).text()
    panel.replace_button.click()
    return first


def _record_alert(window: MainWindow, _title: str, message: str) -> None:
    """Offscreen, a modal dialog would wait forever: the tests read the last error instead."""
    window.last_error = message  # type: ignore[attr-defined]


@pytest.fixture
def make_window(qtbot, icd_data: Path):
    windows: list[MainWindow] = []

    def make(job: FakeJob | None = None, settings: EngineSettings | None = None, confirm=None) -> MainWindow:
        config = AppConfig(engine=settings or EngineSettings())
        window = MainWindow(FakeEngine, job or FakeJob(), config, open_table("who-zh"), alert=_record_alert,
                            confirm=confirm or (lambda *_: True))
        qtbot.addWidget(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.host.stop()


def _ready(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.engine_info is not None, timeout=10_000)


def _generate(qtbot, window: MainWindow, timeout: int = 20_000) -> BriefReport:
    with qtbot.waitSignal(window.report_ready, timeout=timeout) as blocker:
        window.generate_action.trigger()
    return blocker.args[0]


def test_generation_streams_tokens_then_fills_all_four_sections(qtbot, make_window) -> None:
    job = FakeJob(tokens=30, delay=0.02)
    window = make_window(job)
    _ready(qtbot, window)
    assert window.open_file(str(SAMPLE_RECORD))
    window.generate_action.trigger()
    # The run waits behind the lookup index the worker builds after loading (seconds on a busy 2-core machine).
    qtbot.waitUntil(lambda: "片段" in window.progress_view.raw_output.toPlainText(), timeout=30_000)
    assert window.generating  # tokens visible while generation still runs
    assert not window.generate_action.isEnabled() and window.stop_action.isEnabled()
    qtbot.waitUntil(lambda: not window.generating, timeout=10_000)
    summary = window.summary_pane.summary()
    assert summary.chief_complaint and summary.present_illness
    assert len(summary.auxiliary_exams) == 3 and len(summary.diagnoses) == 3
    assert window.icd_panel.rows.rowCount() == 3
    assert job.thread_names == [False]  # ran in the worker thread, never on the GUI thread


def test_the_progress_pane_speaks_words_and_the_raw_output_waits_behind_details(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=30, delay=0.001))
    _generated(qtbot, window)
    shown = window.progress_view.log.toPlainText()
    assert "▶" in shown and "片段" not in shown and "{" not in shown
    assert "片段" in window.progress_view.raw_output.toPlainText() and not window.progress_view.raw_output.isVisibleTo(window)
    assert window.progress_view.stream_label.text().startswith("模型已输出")
    window.progress_view.show_raw.setChecked(True)
    assert window.progress_view.raw_output.isVisibleTo(window)


def test_progress_view_is_throttled_not_repainted_per_token(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=200, delay=0.001))
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    chunks: list[str] = []
    window.host.worker.tokens.connect(chunks.append)
    _generate(qtbot, window)
    assert "".join(chunks).count("片段") == 200
    assert len(chunks) < 50


def test_event_loop_keeps_running_during_generation(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=50, delay=0.02))
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    _generate(qtbot, window)
    timer.stop()
    assert len(ticks) >= 20  # ~1 s of generation: the GUI thread kept ticking
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.5


def test_stop_returns_within_two_seconds_and_the_app_stays_usable(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=10_000, delay=0.01))
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    window.generate_action.trigger()
    qtbot.waitUntil(lambda: "片段" in window.progress_view.raw_output.toPlainText(), timeout=5_000)
    started = time.perf_counter()
    with qtbot.waitSignal(window.host.worker.cancelled, timeout=2_000):
        window.stop_action.trigger()
    assert time.perf_counter() - started < 2.0
    qtbot.waitUntil(lambda: window.generate_action.isEnabled(), timeout=2_000)
    assert "已停止" in window.progress_view.log.toPlainText()


def test_engine_errors_show_a_plain_message_and_the_app_stays_up(qtbot, make_window) -> None:
    window = make_window(settings=EngineSettings(model_path=Path("/nowhere/missing.gguf")))
    qtbot.waitUntil(lambda: "未加载" in window.status.model_label.text(), timeout=5_000)
    assert window.last_error == "找不到模型文件：/nowhere/missing.gguf"  # one language: the Chinese half
    assert not window.generate_action.isEnabled()
    window.apply_settings(EngineSettings())  # fix the setting: the app recovers without a restart
    _ready(qtbot, window)
    assert window.generate_action.isEnabled()


def test_generation_failure_is_reported_and_generation_can_run_again(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=3, error="病历过长 / record too long for the context window"))
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    with qtbot.waitSignal(window.host.worker.failed, timeout=5_000):
        window.generate_action.trigger()
    qtbot.waitUntil(lambda: window.generate_action.isEnabled(), timeout=2_000)
    assert window.last_error == "病历过长"


def test_bad_file_keeps_the_current_record(qtbot, make_window, tmp_path: Path) -> None:
    window = make_window()
    window.open_file(str(SAMPLE_RECORD))
    binary = tmp_path / "scan.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    assert not window.open_file(str(binary))
    assert window.last_error == "这是二进制文件，不是文本病历：scan.txt"
    assert "NT-proBNP" in window.document_pane.toPlainText()
    assert not window.set_document_text("   ")
    assert window.record.document is not None and window.record.document.file_name == "sample_record.txt"


def test_demo_model_shows_banner_and_badge(qtbot, make_window) -> None:
    window = make_window()
    _ready(qtbot, window)
    assert window.banners.demo.isVisibleTo(window) and window.status.demo_badge.isVisibleTo(window)
    assert "不可用于临床" in window.banners.demo.text()
    assert "CPU" in window.status.placement_label.text() and "32768" in window.status.context_label.text()
    assert "⚠" not in window.status.placement_label.text()
    # Context, speed and layer placement are IT's: hidden until 技术详情 is ticked.
    assert not window.status.context_label.isVisibleTo(window) and not window.status.placement_label.isVisibleTo(window)
    window.status.tech_details.setChecked(True)
    assert window.status.context_label.isVisibleTo(window) and window.status.speed_label.isVisibleTo(window)


def test_a_silent_fall_back_to_the_cpu_is_shown_as_a_warning(qtbot, make_window) -> None:
    from dataclasses import replace

    from inference.llm.engine import _placement_warning

    window = make_window()
    _ready(qtbot, window)
    warning = _placement_warning(requested=-1, offloaded=0, total=41, gpu_build=True)
    window._engine_loaded(replace(fake_info(demo=False), warning=warning))
    assert window.status.placement_label.text() == "运行于：CPU ⚠"
    assert window.status.placement_label.isVisibleTo(window)  # a warning the doctor should see, details or not
    assert "未找到可用的 GPU" in window.status.placement_label.toolTip()
    partial = replace(fake_info(demo=False), backend="GPU", gpu_layers_offloaded=30, total_layers=41,
                      warning=_placement_warning(requested=-1, offloaded=30, total=41, gpu_build=True))
    window._engine_loaded(partial)
    assert window.status.placement_label.text().startswith("运行于：GPU 30/41 层") and "30/41" in partial.warning


def test_clicking_a_statement_highlights_its_source_span(qtbot, make_window) -> None:
    window = make_window()
    _generated(qtbot, window)
    exams = window.summary_pane.editors["auxiliary_exams"]
    position = exams.toPlainText().index("LVEF")
    cursor = exams.textCursor()
    cursor.setPosition(position)
    exams.setTextCursor(cursor)
    marks = window.document_pane.marks
    assert marks
    text = window.document_pane.toPlainText()
    assert text[marks[0].start:marks[0].end] == "LVEF 38%"
    assert window.document_pane.textCursor().selectedText() == "LVEF 38%"


def test_editing_revalidates_and_highlights_findings_that_link_to_the_source(qtbot, make_window) -> None:
    window = make_window()
    _generated(qtbot, window)
    assert window.summary_pane.findings_list.count() == 0
    exams = window.summary_pane.editors["auxiliary_exams"]
    with qtbot.waitSignal(window.reviewed, timeout=5_000):  # the review runs off the GUI thread
        exams.setPlainText(exams.toPlainText().replace("LVEF 38%", "LVEF 48%"))
    assert window.summary_pane.findings_list.count() == 1
    item = window.summary_pane.findings_list.item(0)
    assert "LVEF 48%" in item.text() and "原文为 38%" in item.text()
    mark = exams.marks[0]
    assert exams.toPlainText()[mark.start:mark.end] == "LVEF 48%"
    assert "V1" in exams.tooltip_at(mark.start)
    window.summary_pane._finding_clicked(item)
    doc_marks = window.document_pane.marks
    assert window.document_pane.toPlainText()[doc_marks[0].start:doc_marks[0].end] == "LVEF 38%"


def test_icd_accept_and_replace_record_the_doctors_choice(qtbot, make_window) -> None:
    window = make_window()
    _generated(qtbot, window)
    panel = window.icd_panel
    panel.rows.selectRow(0)
    assert panel.candidates.count() >= 2
    table = open_table("who-zh")
    codes = [panel.candidates.item(row).data(256).code for row in range(panel.candidates.count())]
    panel.candidates.setCurrentRow(next(  # another heart failure leaf (a category with subcategories: 须选末级)
        row for row, code in enumerate(codes) if row and code.startswith("I50") and is_leaf(code, table)))
    chosen = panel.candidates.currentItem().data(256)
    with qtbot.waitSignal(window.codes_changed, timeout=1_000):
        panel.accept_button.click()
    assert panel.assignments[0].code == chosen.code and panel.assignments[0].provenance == MANUAL
    assert panel.rows.item(0, 2).text() == "已确认"
    assert replace_by_search(qtbot, panel, 1, "I11.9").startswith("I11.9")
    assert panel.assignments[1].code == "I11.9" and panel.assignments[1].provenance == MANUAL
    assert all(a.code in table for a in panel.assignments)


def test_icd_panel_shows_why_a_code_is_more_precise_and_follows_an_edit_of_the_diagnoses(qtbot, make_window) -> None:
    window = make_window()
    _generated(qtbot, window)
    panel = window.icd_panel
    assert [a.code for a in panel.assignments] == ["I50.9", "I11.0", "N19"]
    panel.rows.selectRow(1)
    assert panel.precision.text() == "编码依据：查询所得 I11；同时诊断心力衰竭 → I11.0"
    assert "同时诊断心力衰竭" in panel.rows.item(1, 1).toolTip()
    diagnoses = window.summary_pane.editors["diagnoses"]
    diagnoses.setPlainText("高血压心脏病\n肾功能不全")  # the heart failure is struck out
    qtbot.waitUntil(lambda: [a.diagnosis for a in panel.assignments] == ["高血压心脏病", "肾功能不全"], timeout=10_000)
    assert panel.assignments[0].code == "I11.9" and "未诊断心力衰竭" in panel.assignments[0].precision


def test_copy_puts_the_emr_format_on_the_clipboard(qtbot, make_window) -> None:
    window = make_window()
    _generated(qtbot, window)
    window.copy_action.trigger()
    text = QGuiApplication.clipboard().text()
    assert text.startswith("【主诉】反复胸闷气促3年")
    assert "【辅助检查】NT-proBNP 4500 pg/mL；LVEF 38%；肌酐 138 μmol/L" in text
    assert text.rstrip().endswith("【初步诊断】\n慢性心力衰竭急性加重\n高血压心脏病\n肾功能不全")


def test_a_demo_model_draft_is_marked_in_every_copy_and_export(qtbot, make_window, tmp_path: Path) -> None:
    import json

    from inference.export import DEMO_MARK

    window = make_window(FakeJob(tokens=3, demo=True))
    _generated(qtbot, window)
    assert window.exports.copy().startswith(DEMO_MARK + "\n【主诉】")
    assert QGuiApplication.clipboard().text().startswith(DEMO_MARK)
    for fmt in ("txt", "md", "json", "fhir"):
        assert window.exports.to_file(tmp_path / f"out.{fmt}", fmt)
        assert DEMO_MARK in (tmp_path / f"out.{fmt}").read_text(encoding="utf-8"), fmt
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["demo"] is True
    window.open_file(str(SAMPLE_RECORD))  # another record: nothing on screen is the demo's any more
    assert not window.record.demo_draft


def test_a_rejected_draft_cannot_be_copied_or_exported_and_offers_a_rerun_in_parts(
        qtbot, make_window, tmp_path: Path) -> None:
    from tests.test_draft_trust import OTHER_PATIENT

    job = FakeJob(tokens=3, summary=OTHER_PATIENT)
    window = make_window(job)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    assert not window.rerun_action.isEnabled()
    report = _generate(qtbot, window)
    assert report.rejected and window.record.rejected and not window.banners.rejected.isHidden()
    assert "未通过核对" in window.statusBar().currentMessage() and "摘要完成" not in window.statusBar().currentMessage()
    QGuiApplication.clipboard().setText("之前的内容")
    assert window.exports.copy() == "" and QGuiApplication.clipboard().text() == "之前的内容"
    assert not window.copy_action.isEnabled() and not window.export_action.isEnabled()
    assert not window.exports.to_file(tmp_path / "x.txt", "txt") and not (tmp_path / "x.txt").exists()
    assert window.rerun_action.isEnabled()
    job.summary = SAMPLE_SUMMARY
    with qtbot.waitSignal(window.report_ready, timeout=10_000):
        window.rerun_action.trigger()
    assert job.part_budgets == [None, retry_part_tokens(None)]  # the rerun asked for parts half a small part long
    assert not window.record.rejected and window.banners.rejected.isHidden() and window.copy_action.isEnabled()
    assert "用时 1.2 秒" in window.statusBar().currentMessage()  # the whole run, ICD rounds and checks included
    assert window.exports.copy().startswith("【主诉】")


def test_progress_shows_phase_and_part_in_the_status_bar(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=60, delay=0.02))
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    window.generate_action.trigger()
    qtbot.waitUntil(lambda: "生成摘要" in window.statusBar().currentMessage(), timeout=5_000)
    assert not window.status.progress_bar.isHidden()
    qtbot.waitUntil(lambda: not window.generating, timeout=10_000)
    assert window.status.progress_bar.isHidden()
    findings = window.summary_pane.findings_list
    assert findings.minimumHeight() >= 6 * findings.fontMetrics().height()  # six rows at least; test_desktop_layout renders it


def test_export_writes_every_format(qtbot, make_window, tmp_path: Path) -> None:
    import json

    window = make_window()
    _generated(qtbot, window)
    for fmt in ("txt", "md", "json", "fhir"):
        assert window.exports.to_file(tmp_path / f"out.{fmt}", fmt)
    assert (tmp_path / "out.txt").read_text(encoding="utf-8").startswith("【主诉】")
    bundle = json.loads((tmp_path / "out.fhir").read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle"
    assert not window.exports.to_file(tmp_path / "missing-dir" / "x.txt", "txt")
    assert "无法写入" in window.last_error


def test_real_demo_model_end_to_end(qtbot, icd_data: Path, demo_model_path: Path) -> None:

    window = build_window(AppConfig(engine=EngineSettings()), alert=_record_alert)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: window.engine_info is not None, timeout=60_000)
        assert window.engine_info.is_demo and window.banners.demo.isVisibleTo(window)
        assert window.open_file(str(SAMPLE_RECORD))
        with qtbot.waitSignal(window.report_ready, timeout=300_000):
            window.generate_action.trigger()
        summary = window.summary_pane.summary()
        assert summary.chief_complaint and summary.present_illness
        assert {i.name for i in summary.auxiliary_exams} >= {"NT-proBNP", "LVEF", "肌酐"}
        assert len(summary.diagnoses) == 3
        table = open_table("who-zh")
        assert window.icd_panel.rows.rowCount() == 3
        assert all(a.code in table for a in window.icd_panel.assignments)
        assert "<tool_call>" in window.progress_view.raw_output.toPlainText()  # behind 详情, never in the progress pane
        assert "<tool_call>" not in window.progress_view.log.toPlainText() and "{" not in window.progress_view.log.toPlainText()
        report = window.record.report
        assert report.elapsed_s >= sum(call["total_s"] for call in report.result.timings.calls)  # ICD rounds too
        assert any(call["kind"].startswith("icd round") for call in report.result.timings.calls)
        diagnoses = window.summary_pane.editors["diagnoses"]
        with qtbot.waitSignal(window.reviewed, timeout=10_000):
            diagnoses.setPlainText("心梗\n" + "\n".join(d.name for d in summary.diagnoses[1:]))
        assert any(m.tooltip.startswith("[错误 T1]") for m in diagnoses.marks)
    finally:
        window.host.stop()


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_every_pane_is_usable_on_ward_pc_screens(qtbot, make_window, size) -> None:
    window = make_window()
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    assert window.width() <= size[0] and window.height() <= size[1]
    for pane in (window.document_pane, window.summary_pane, window.icd_panel, window.progress_view.log):
        assert pane.isVisible() and pane.width() >= 250 and pane.height() >= 60, pane.objectName()


def test_settings_dialog_saves_the_model_and_reloads_the_engine(qtbot, make_window, tmp_path) -> None:
    from desktop.settings_dialog import SettingsDialog
    from inference.llm.settings import load_config

    window = make_window()
    _ready(qtbot, window)
    dialog = SettingsDialog(window.config.engine, window)
    dialog.editors["model_path"].set_text(str(tmp_path / "Qwen3-14B-Q4_K_M.gguf"))
    dialog.field("n_gpu_layers").setValue(20)
    dialog.field("n_ctx").setValue(16384)
    dialog.field("n_threads").setValue(8)
    dialog.field("flash_attn").setChecked(False)
    settings = dialog.settings()
    assert (settings.n_gpu_layers, settings.n_ctx, settings.n_threads, settings.flash_attn) == (20, 16384, 8, False)
    window.apply_settings(settings)
    qtbot.waitUntil(lambda: window.engine_info is not None, timeout=5_000)
    saved = load_config().engine
    assert saved.model_path == tmp_path / "Qwen3-14B-Q4_K_M.gguf" and saved.n_ctx == 16384
    assert not window.engine_info.is_demo and not window.banners.demo.isVisibleTo(window)


def test_the_lookup_index_is_built_in_the_worker_not_on_the_gui_thread(qtbot, make_window, monkeypatch) -> None:
    import desktop.worker  # noqa: F401
    import inference.icd.lookup as icd_lookup

    built_on_gui_thread: list[bool] = []
    original = icd_lookup.matcher_for

    def spy(table):  # type: ignore[no-untyped-def]
        built_on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return original(table)

    monkeypatch.setattr(icd_lookup, "matcher_for", spy)
    window = make_window()
    qtbot.waitUntil(lambda: bool(built_on_gui_thread), timeout=10_000)
    assert built_on_gui_thread[0] is False
    assert window.table is not None


def test_settings_dialog_applies_the_engines_own_validators(qtbot, make_window) -> None:
    from desktop.settings_dialog import SettingsDialog

    window = make_window(settings=EngineSettings(kv_cache_type="q8_0"))
    dialog = SettingsDialog(window.config.engine, window)
    qtbot.addWidget(dialog)
    dialog.field("flash_attn").setChecked(False)  # a q8_0 V cache needs flash attention
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and "flash" in dialog.problem.text()
    dialog.field("flash_attn").setChecked(True)
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and dialog.settings().kv_cache_type == "q8_0"


def test_settings_say_in_words_what_minus_one_and_unset_mean(qtbot, make_window) -> None:
    from desktop.settings_dialog import SettingsDialog

    window = make_window(settings=EngineSettings(n_gpu_layers=-1, n_threads=None))
    dialog = SettingsDialog(window.config.engine, window)
    qtbot.addWidget(dialog)
    assert dialog.field("n_gpu_layers").text() == "全部层（-1）"  # not a bare -1
    assert dialog.field("n_threads").text() == "自动"  # not 0
    dialog.field("n_threads").setValue(4)
    assert dialog.field("n_threads").text() == "4"


def test_qt_speaks_chinese_in_its_own_dialogs_and_candidates_say_how_they_were_found(qtbot, make_window) -> None:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from desktop.app import install_chinese_translations

    translators = install_chinese_translations(QApplication.instance())
    try:
        assert translators, "PySide6 ships qtbase_zh_CN"
        assert QCoreApplication.translate("QPlatformTheme", "Cancel") == "取消"
    finally:
        for translator in translators:
            QApplication.instance().removeTranslator(translator)
    window = make_window()
    _generated(qtbot, window)
    panel = window.icd_panel
    panel.rows.selectRow(0)
    texts = [panel.candidates.item(i).text() for i in range(panel.candidates.count())]
    assert texts and all("置信度" in t for t in texts)
    assert not any(word in t for t in texts for word in ("fuzzy", "synonym", "exact_name", "similar_"))


def test_no_problem_is_said_only_after_a_check_ran(qtbot, make_window) -> None:
    window = make_window()
    _ready(qtbot, window)
    label = window.summary_pane.findings_label
    assert "尚未核对" in label.text()
    window.open_file(str(SAMPLE_RECORD))
    assert "尚未核对" in label.text() and "未发现问题" not in label.text()
    _generate(qtbot, window)
    assert "尚未核对" not in label.text() and label.text().startswith("核对结果：")


def test_settings_refuse_a_file_that_is_not_a_gguf_and_keep_the_loaded_model(qtbot, make_window, tmp_path) -> None:
    from desktop.settings_dialog import SettingsDialog

    window = make_window()
    _ready(qtbot, window)
    loaded = window.engine_info
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_text("这不是模型", encoding="utf-8")
    dialog = SettingsDialog(window.config.engine, window)
    qtbot.addWidget(dialog)
    dialog.editors["model_path"].set_text(str(not_a_model))
    dialog.accept()
    assert dialog.result() == 0 and dialog.problem.text() == f"模型文件不可用：不是 GGUF 模型文件：{not_a_model}"
    assert window.engine_info is loaded and window.config.engine.model_path is None  # nothing saved or reloaded


def test_the_window_speaks_the_chinese_half_of_bilingual_messages() -> None:
    from desktop.wording import chinese

    assert chinese("找不到 ICD 编码表 'x' / ICD table not found: /d/x.sqlite") == "找不到 ICD 编码表 'x'：/d/x.sqlite"
    assert chinese("状态只能前进：a → b 不允许 / status only moves forward") == "状态只能前进：a → b 不允许"
    assert chinese("disk I/O error / 2") == "disk I/O error / 2"  # no Chinese part: kept whole


def test_opening_another_record_says_so_and_clears_the_last_runs_progress(qtbot, make_window) -> None:
    window = make_window(FakeJob(tokens=5))
    _generated(qtbot, window)
    assert window.progress_view.log.toPlainText()
    window.set_document_text("患者女，50岁，头痛2天。")
    assert window.progress_view.log.toPlainText() == "" and window.progress_view.raw_output.toPlainText() == ""
    assert "上一份摘要已不在窗口中" in window.statusBar().currentMessage()  # no history here to keep it


def test_moving_through_findings_with_the_keyboard_moves_the_source_highlight(qtbot, make_window) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    window = make_window()
    _generated(qtbot, window)
    exams = window.summary_pane.editors["auxiliary_exams"]
    with qtbot.waitSignal(window.reviewed, timeout=5_000):
        exams.setPlainText(exams.toPlainText().replace("LVEF 38%", "LVEF 48%").replace("138 μmol/L", "158 μmol/L"))
    findings = window.summary_pane.findings_list
    assert findings.count() == 2
    document = window.document_pane

    def highlighted() -> str:
        mark = document.marks[0]
        return document.toPlainText()[mark.start:mark.end]

    findings.setFocus()
    findings.setCurrentRow(0)
    first = highlighted()
    QTest.keyClick(findings, Qt.Key.Key_Down)
    assert findings.currentRow() == 1 and highlighted() != first
    assert (first, highlighted()) == ("LVEF 38%", "肌酐 138 μmol/L")


def test_the_settings_dialog_is_built_from_every_engine_setting(qtbot, make_window) -> None:
    from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox, QTabWidget

    from desktop.settings_dialog import SettingsDialog
    from inference.llm.settings import SETTINGS_GROUPS

    window = make_window()
    dialog = SettingsDialog(window.config.engine, window)
    qtbot.addWidget(dialog)
    assert set(dialog.editors) == set(EngineSettings.model_fields)  # all 26, not a hand-picked 10
    tabs = dialog.findChild(QTabWidget)
    assert [tabs.tabText(i) for i in range(tabs.count())] == [title for title, _group in SETTINGS_GROUPS]
    assert dialog.settings() == window.config.engine  # untouched, the dialog gives back what it was given
    lora_scale, n_ctx = dialog.field("lora_scale"), dialog.field("n_ctx")
    assert isinstance(lora_scale, QDoubleSpinBox) and lora_scale.maximum() == 4.0  # le=4.0 on the field
    assert isinstance(n_ctx, QSpinBox) and n_ctx.minimum() == 512  # ge=512 on the field
    gpu_layers, threads = dialog.field("n_gpu_layers"), dialog.field("n_threads")
    assert gpu_layers.value() == -1 and gpu_layers.text() == "全部层（-1）"  # said in words, not a bare -1
    assert threads.text() == "自动" and dialog.settings().n_threads is None
    threads.setValue(4)
    assert dialog.settings().n_threads == 4
    backend = dialog.field("backend")
    assert isinstance(backend, QComboBox) and backend.itemText(1).startswith("科室模型服务器")
    assert dialog.field("temperature").toolTip().startswith("0 = 贪心解码")  # the Chinese half of the description


def test_an_exception_nobody_caught_on_any_thread_is_one_line_shown_on_the_gui_thread(qtbot, tmp_path) -> None:
    import sys

    from desktop.app import install_exception_hooks

    shown: list[tuple[str, str, bool]] = []
    saved = sys.excepthook, threading.excepthook
    reporter = install_exception_hooks(
        lambda title, message: shown.append((title, message, threading.current_thread() is threading.main_thread())))
    try:
        worker = threading.Thread(target=lambda: 1 / 0)
        worker.start()
        worker.join()
        qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
        sys.excepthook(ValueError, ValueError("in a slot"), None)
        qtbot.waitUntil(lambda: len(shown) == 2, timeout=5_000)
    finally:
        sys.excepthook, threading.excepthook = saved
        reporter.deleteLater()
    assert all(on_gui_thread for _title, _message, on_gui_thread in shown)  # widgets only from the GUI thread
    title, message, _ = shown[0]
    assert title == "内部错误" and "ZeroDivisionError" in message and "\n" not in message
    assert "medbrief-errors.log" in message
