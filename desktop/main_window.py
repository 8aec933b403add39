"""The main window: document pane | summary pane | ICD panel above, findings | progress below, status bar.

It renders ``self.record`` (an ``OpenRecord``: the record's state and rules, Qt-free) and the panes' content;
the engine runs in the worker thread, reviews and lookups in ``background``, history writes in ``writes``.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox, QWidget

from desktop.background import Background
from desktop.file_dialogs import RECORD_FILTERS, ask_paths
from desktop.generation import Generation
from desktop.original_pages import OriginalPages
from desktop.record_opening import RecordOpening
from desktop.settings_dialog import SettingsDialog
from desktop.status_bar import EngineStatus
from desktop.summary_export import SummaryExport
from desktop.summary_review import SummaryReview
from desktop.template_picker import TemplatePicker
from desktop.window_layout import WindowLayout
from desktop.wording import chinese
from desktop.worker import LoadEngine, RunJob, WorkerHost
from inference.crash_log import internal_error
from inference.documents import Document, document_from_text
from inference.errors import MedBriefError
from inference.icd.coding import IcdAssignment
from inference.icd.table import IcdTable
from inference.llm.engine import EngineInfo
from inference.llm.settings import AppConfig, EngineSettings, save_config
from inference.open_record import OpenRecord
from inference.record.status import Attestation
from inference.templates.content import AnySummary

Alert = Callable[[QWidget, str, str], object]
Confirm = Callable[[QWidget, str, str], bool]


def _ask_yes_no(parent: QWidget, title: str, question: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, question, parent=parent)
    yes = box.addButton("继续", QMessageBox.ButtonRole.YesRole)
    box.addButton("取消", QMessageBox.ButtonRole.NoRole)
    box.exec()
    return box.clickedButton() is yes


class MainWindow(QMainWindow):
    report_ready = Signal(object)  # the Report, after it is shown (the history store listens)
    summary_edited = Signal(object)  # the summary on screen (StructuredSummary or TemplatedSummary), debounced
    codes_changed = Signal()
    document_changed = Signal(object)  # Document
    exported = Signal(str, str)  # path, format
    record_changed = Signal()  # the open record's state changed (rejected, signed, another record)
    reviewed = Signal(object)  # ValidationReport of the summary on screen, after an edit or a reopen
    error_shown = Signal(str, str)  # title, message: every error the doctor is told about

    def __init__(self, load_engine: LoadEngine, run_job: RunJob, config: AppConfig, table: IcdTable | None,
                 table_error: str = "", alert: Alert = QMessageBox.critical, confirm: Confirm | None = None) -> None:
        super().__init__()
        self.setWindowTitle("MedBrief 病历摘要助手")
        self._alert = alert  # how an error reaches the doctor: a dialog (tests record it instead)
        self._confirm = confirm or _ask_yes_no
        self.config = config
        self.table = table
        self.record: OpenRecord | None = None
        self.engine_info: EngineInfo | None = None
        self.generating = False
        self.background = Background(self)  # reviews, lookups and history queries: never on this thread
        self.writes = Background(self, serial=True)  # history writes (autosave, status): in order, off it too
        self._build_panes()
        self.status = EngineStatus(self.statusBar())
        self.host = WorkerHost(load_engine, run_job, self)
        self.runs = Generation(self)  # the model's runs: start, progress, stop, continue, the end
        self._build_actions()
        self.host.worker.loaded.connect(self._engine_loaded)
        self.host.worker.load_failed.connect(self._engine_failed)
        if table is not None:
            self.icd_panel.set_table(table)
        if table_error:
            self.progress_view.note(f"ICD 编码表不可用：{table_error}")
        self.render()
        self.load_engine(config.engine)
        if table is not None:
            self.host.prepare(table)  # queued behind the model load, in the worker thread

    # -- layout ----------------------------------------------------------------------------------

    def _build_panes(self) -> None:
        panes = WindowLayout(self.background)
        self.setCentralWidget(panes)
        self.panes, self.banners, self.progress_view = panes, panes.banners, panes.progress_view
        self.document_pane, self.summary_pane, self.icd_panel = panes.document_pane, panes.summary_pane, panes.icd_panel
        self.opening = RecordOpening(self)
        self.document_pane.files_dropped.connect(self.open_files)
        self.document_pane.text_dropped.connect(self.set_document_text)
        self.reviews = SummaryReview(self)
        self.originals = OriginalPages(self)
        self.icd_panel.changed.connect(self.codes_changed.emit)
        self.exports = SummaryExport(self)
        self.resize(1366, 768)
        self.setMinimumSize(1024, 600)

    def _action(self, text: str, shortcut: str | QKeySequence, slot: Callable[[], object], name: str) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{text}（{QKeySequence(shortcut).toString()}）")
        action.triggered.connect(slot)
        self.toolbar.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.toolbar = self.addToolBar("操作")
        self.toolbar.setMovable(False)
        self.open_action = self._action("打开", QKeySequence.StandardKey.Open, self.choose_file, "open")
        self.paste_action = self._action("粘贴病历", "Ctrl+Shift+V", self.paste_document, "paste")
        self.templates = TemplatePicker()
        self.toolbar.addWidget(self.templates)
        self.generate_action = self._action("生成摘要", "Ctrl+Return", self.generate, "generate")
        self.rerun_action = self._action("分段重新生成", "Ctrl+Shift+Return", self.rerun_in_parts, "rerun_in_parts")
        self.stop_action = self._action("停止", "Esc", self.stop, "stop")
        self.resume_action = self._action("继续生成", "Ctrl+Shift+G", self.runs.resume, "resume")
        self.copy_action = self._action("复制", "Ctrl+Shift+C", self.exports.copy, "copy")
        self.export_action = self._action("导出", "Ctrl+E", self.exports.choose, "export")
        self.settings_action = self._action("设置", "Ctrl+,", self.open_settings, "settings")
        self.amend_action = self._action("修改（新版本）", "Ctrl+Shift+M", self.amend, "amend")

    def render(self) -> None:
        """The actions, banners and read-only state from the open record and whether a run is going on."""
        record, ready, running = self.record, self.engine_info is not None, self.generating
        reading = self.opening.reading  # a PDF, a scan or a folder being read: Esc stops that
        usable = record is None or record.can_copy
        self.generate_action.setEnabled(ready and not running and not reading)
        self.rerun_action.setEnabled(ready and not running and record is not None and record.can_rerun_in_parts)
        self.copy_action.setEnabled(usable)
        self.export_action.setEnabled(usable)
        self.stop_action.setEnabled(running or reading)
        self.resume_action.setEnabled(ready and not running and record is not None and record.resumable is not None)
        for action in (self.open_action, self.paste_action, self.settings_action):
            action.setEnabled(not running and not reading)
        self.templates.setEnabled(not running)
        signed = record is not None and record.signed
        self.panes.show_state(signed, running)
        self.amend_action.setEnabled(signed)
        self.banners.render(record)
        self.status.generating(running)
        self.record_changed.emit()

    # -- engine --------------------------------------------------------------------------------------

    def load_engine(self, settings: EngineSettings) -> None:
        self.engine_info = None
        self.status.loading()
        self.render()
        self.host.load(settings)

    def _engine_loaded(self, info: EngineInfo) -> None:
        self.engine_info = info
        self.status.loaded(info)
        self.banners.show_demo_model(info.is_demo)
        self.render()

    def _engine_failed(self, message: str) -> None:
        self.status.failed()
        self.render()
        self.show_error("模型加载失败", message)

    # -- documents -----------------------------------------------------------------------------------

    def choose_file(self) -> None:
        """One file, or several chosen together: one patient's record (本院 PDF + 外院 scans), in the order named."""
        chosen = ask_paths(self, "打开病历（可多选，合并为一份病历）", RECORD_FILTERS)
        if chosen:
            self.open_files([str(path) for path in chosen])

    def open_file(self, path: str) -> bool:
        return self.open_files([path])

    def open_files(self, paths: list[str]) -> bool:
        """True when the record is shown (text, .docx) or being read (PDF, scans, a folder: ``opening``)."""
        return self.opening.open(paths)

    def paste_document(self) -> None:
        self.set_document_text(QGuiApplication.clipboard().text())

    def set_document_text(self, text: str) -> bool:
        return self.adopt_document(lambda: document_from_text(text), "无法使用粘贴的内容")

    def adopt_document(self, load: Callable[[], Document], failure_title: str) -> bool:
        """Show a new record; on bad input keep the current one and say why."""
        try:
            document = load()
        except Exception as exc:  # noqa: BLE001 - a file nobody foresaw: a dialog and the log, never a crash
            self.refuse_document(failure_title, exc)
            return False
        self._show_record(OpenRecord(document))
        return True

    def refuse_document(self, title: str, exc: Exception) -> None:
        """A record that could not be read: one line in a dialog (an unforeseen failure also in the log)."""
        self.show_error(title, exc.message if isinstance(exc, MedBriefError) else
                        internal_error(exc, "open a record").message)

    def _show_record(self, record: OpenRecord) -> None:
        had_summary = self.record is not None and any(e.toPlainText() for e in self.summary_pane.editors.values())
        self.record = record
        document = record.document
        self.document_pane.setPlainText(document.text)
        self.summary_pane.clear()
        self.icd_panel.set_assignments([])
        self.icd_panel.patient = record.patient
        self.progress_view.clear()  # the last record's run does not belong to this one
        self.render()
        self.setWindowTitle(f"MedBrief 病历摘要助手 — {document.file_name}")
        self.statusBar().showMessage(f"已载入 {document.file_name}（{document.encoding}，{len(document.text)} 字）", 8000)
        self.document_changed.emit(document)  # the history says where the last summary went (after this line)
        if had_summary and self.statusBar().currentMessage().startswith("已载入"):
            self.statusBar().showMessage(self.statusBar().currentMessage() + "；上一份摘要已不在窗口中", 8000)

    # -- generation ----------------------------------------------------------------------------------

    def rerun_in_parts(self) -> None:
        """After a rejected draft: the same record again in parts half as long as the last run's."""
        if self.record is not None:
            self.generate(part_budget=self.record.rerun_part_tokens())

    def attested(self, record: OpenRecord, attestation: Attestation) -> None:
        """The version on screen was reviewed or signed. A signed version is immutable: the summary and the
        codes are read-only until the doctor asks for a new version."""
        record.attested(attestation)
        if record is self.record:
            self.render()

    def amend(self) -> bool:
        """Start a new version of a signed summary, after asking; the signed one stays in the history."""
        if self.record is None or not self.record.signed:
            return True
        if not self.ask("修改已签署的摘要", "此摘要已签署。修改将生成新的草稿版本（需重新审核签署），"
                        "已签署的版本保留在历史记录中。继续吗？"):
            return False
        self.record.unsigned()
        self.render()
        self.statusBar().showMessage("已开始新版本：修改将保存为草稿", 5000)
        return True

    def generate(self, part_budget: int | None = None) -> None:
        self.runs.start(part_budget)

    def stop(self) -> None:
        if self.opening.reading:
            self.opening.cancel()
        else:
            self.runs.stop()

    def current_summary(self) -> AnySummary | None:
        return self.reviews.current_summary()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.config.engine, self, self.background)
        if dialog.exec():
            self.apply_settings(dialog.settings())

    def apply_settings(self, settings: EngineSettings) -> None:
        self.config.engine = settings
        try:
            save_config(self.config)
        except OSError as exc:
            self.show_error("无法保存设置", str(exc))
        self.load_engine(settings)

    def ask(self, title: str, question: str) -> bool:
        """继续 or 取消, asked of the doctor (tests answer without a dialog)."""
        return self._confirm(self, title, question)

    def show_error(self, title: str, message: str) -> None:
        """A plain message in Chinese (the English half of the core's messages is for the CLI and the log),
        never a traceback; the window stays usable."""
        message = chinese(message)
        self.statusBar().showMessage(message, 10000)
        self.error_shown.emit(title, message)
        self._alert(self, title, message)

    def show_saved(self, record: OpenRecord, summary: AnySummary, codes: list[IcdAssignment]) -> None:
        """Reopen a record from the history into the panes (with the template it was written with), reviewed
        with its run's evidence."""
        self._show_record(record)
        self.summary_pane.set_summary(summary)
        self.templates.show_template(self.summary_pane.template)
        self.icd_panel.set_assignments(codes)
        self.render()
        self.reviews.review(summary, record)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.host.stop()
        self.background.wait()
        self.writes.wait()  # the last autosave reaches the history before the app goes
        super().closeEvent(event)
