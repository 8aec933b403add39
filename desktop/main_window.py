"""The main window: document pane | summary pane | ICD panel, streaming progress, status bar."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from desktop.background import Background
from desktop.document_pane import DocumentPane
from desktop.icd_panel import IcdPanel
from desktop.settings_dialog import SettingsDialog
from desktop.summary_pane import SummaryPane
from desktop.wording import chinese
from desktop.worker import WorkerHost
from inference.checks.grounding import Statement
from inference.checks.validation import Finding, RunEvidence, ValidationReport, validate
from inference.documents import Document, document_from_text, load_document
from inference.errors import MedBriefError
from inference.export import export, to_text
from inference.icd.table import IcdTable
from inference.llm.engine import EngineInfo
from inference.llm.settings import AppConfig, EngineSettings, save_config
from inference.pipeline import BriefReport
from inference.summary.schema import StructuredSummary


def _banner(name: str, text: str, colours: str) -> QLabel:
    """A strip across the top of the window, hidden until its state applies."""
    banner = QLabel(text)
    banner.setObjectName(name)
    banner.setWordWrap(True)
    banner.setStyleSheet(colours + " padding:6px; font-weight:bold;")
    banner.setVisible(False)
    return banner


def _scrolling(widget: QWidget) -> QScrollArea:
    """A pane that scrolls instead of squeezing its boxes into each other on a small window."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _ask_yes_no(parent: QWidget, title: str, question: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, question, parent=parent)
    yes = box.addButton("继续", QMessageBox.ButtonRole.YesRole)
    box.addButton("取消", QMessageBox.ButtonRole.NoRole)
    box.exec()
    return box.clickedButton() is yes


DEMO_BANNER = "演示模型：仅供体验软件，不可用于临床。请在“设置”中选择医院部署的 GGUF 模型。"
EXPORT_FILTERS = {"txt": "病历文本 (*.txt)", "md": "Markdown (*.md)", "json": "JSON (*.json)",
                  "fhir": "FHIR R4 Bundle (*.fhir.json)"}


class MainWindow(QMainWindow):
    report_ready = Signal(object)  # BriefReport, after it is shown (the history store listens)
    summary_edited = Signal(object)  # StructuredSummary, debounced
    codes_changed = Signal()
    document_changed = Signal(object)  # Document
    exported = Signal(str, str)  # path, format
    rejected_changed = Signal(bool)  # the draft on screen was refused by the checks (not from the record)
    reviewed = Signal(object)  # ValidationReport of the summary on screen, after an edit or a reopen
    error_shown = Signal(str, str)  # title, message: every error the doctor is told about

    def __init__(
        self,
        load_engine: Callable[[EngineSettings], Any],
        run_job: Callable[..., BriefReport],
        config: AppConfig,
        table: IcdTable | None,
        table_error: str = "",
        alert: Callable[[QWidget, str, str], Any] = QMessageBox.critical,
        confirm: Callable[[QWidget, str, str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle("MedBrief 病历摘要助手")
        self._alert = alert  # how an error reaches the doctor: a dialog (tests record it instead)
        self._confirm = confirm or _ask_yes_no
        self.signed = False  # the version on screen is signed: read-only until the doctor starts a new one
        self._kept_codes: dict[str, Any] = {}  # the doctor's code choices, carried over a regeneration
        self.config = config
        self.table = table
        self.document: Document | None = None
        self.report: BriefReport | None = None
        self.validation: ValidationReport | None = None
        self.demo_draft = False
        self.evidence = RunEvidence()  # the shown summary's run: every review of it uses the same evidence
        self.engine_info: EngineInfo | None = None
        self.generating = False
        self.rejected = False
        self._last_step: tuple[str, int] | None = None
        self.background = Background(self)  # reviews, lookups and history queries: never on this thread
        self.writes = Background(self, serial=True)  # history writes (autosave, status): in order, off it too
        self._build_panes()
        self._build_actions()
        self._build_status_bar()
        self.host = WorkerHost(load_engine, run_job, self)
        worker = self.host.worker
        worker.loaded.connect(self._engine_loaded)
        worker.load_failed.connect(self._engine_failed)
        worker.step.connect(self._step)
        worker.tokens.connect(self._tokens)
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        worker.cancelled.connect(self._cancelled)
        if table is not None:
            self.icd_panel.set_table(table)
        if table_error:
            self.progress.appendPlainText(f"ICD 编码表不可用：{table_error}")
        self._set_generating(False)
        self.load_engine(config.engine)
        if table is not None:
            self.host.prepare(table)  # queued behind the model load, in the worker thread

    # -- layout ----------------------------------------------------------------------------------

    def _build_panes(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        self.demo_banner = _banner("demo_banner", DEMO_BANNER, "background:#fff3b0; color:#6b4e00;")
        self.rejected_banner = _banner("rejected_banner", "", "background:#c62828; color:white;")
        self.signed_banner = _banner("signed_banner", "已签署：此版本不可更改。如需修改，请点“修改（新版本）”，"
                                     "已签署版本保留在历史记录中。", "background:#e3f2e1; color:#1b5e20;")
        for banner in (self.demo_banner, self.rejected_banner, self.signed_banner):
            layout.addWidget(banner)
        self.document_pane = DocumentPane()
        self.document_pane.file_dropped.connect(self.open_file)
        self.document_pane.text_dropped.connect(self.set_document_text)
        self.summary_pane = SummaryPane()
        self.summary_pane.edited.connect(self._summary_edited)
        self.summary_pane.statement_activated.connect(self._statement_activated)
        self.summary_pane.finding_activated.connect(self._finding_activated)
        self.icd_panel = IcdPanel(self.background)
        self.icd_panel.changed.connect(self.codes_changed.emit)
        self.progress = QPlainTextEdit()
        self.progress.setObjectName("progress")
        self.progress.setReadOnly(True)
        self.progress.setMaximumBlockCount(2000)
        self.progress.setPlaceholderText("生成过程：读取病历、生成摘要、ICD 编码、核对原文，逐步显示")
        # What the model writes, as it writes it (JSON, <tool_call>): for IT and the curious, behind 详情.
        self.raw_output = QPlainTextEdit()
        self.raw_output.setObjectName("raw_output")
        self.raw_output.setReadOnly(True)
        self.raw_output.setMaximumBlockCount(4000)
        self.raw_output.setVisible(False)
        self.show_raw = QCheckBox("详情（模型原始输出）")
        self.show_raw.setObjectName("show_raw")
        self.show_raw.toggled.connect(self.raw_output.setVisible)
        self.stream_label = QLabel("")
        self.stream_label.setObjectName("stream_label")
        self._streamed_chars = 0
        panes = QSplitter(Qt.Orientation.Horizontal)
        panes.addWidget(self._titled("病历原文", self.document_pane))
        panes.addWidget(self._titled("结构化摘要（可编辑）", _scrolling(self.summary_pane)))
        panes.addWidget(_scrolling(self.icd_panel))
        panes.setSizes([430, 520, 400])
        below = QSplitter(Qt.Orientation.Horizontal)
        below.addWidget(self.summary_pane.findings_box)
        below.addWidget(self._progress_area())
        below.setSizes([760, 600])
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(panes)
        vertical.addWidget(below)
        vertical.setStretchFactor(0, 3)
        vertical.setStretchFactor(1, 1)
        vertical.setSizes([560, 170])
        layout.addWidget(vertical, 1)
        self.setCentralWidget(central)
        self.resize(1366, 768)
        self.setMinimumSize(1024, 600)

    def _progress_area(self) -> QWidget:
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        label = QLabel("生成过程")
        label.setStyleSheet("font-weight:bold; padding:2px;")
        header.addWidget(label)
        header.addWidget(self.stream_label)
        header.addStretch(1)
        header.addWidget(self.show_raw)
        layout.addLayout(header)
        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.progress)
        body.addWidget(self.raw_output)
        layout.addWidget(body, 1)
        return holder

    @staticmethod
    def _titled(title: str, widget: QWidget) -> QWidget:
        holder = QWidget()
        layout = QVBoxLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        label = QLabel(title)
        label.setStyleSheet("font-weight:bold; padding:2px;")
        layout.addWidget(label)
        layout.addWidget(widget, 1)
        return holder

    def _action(self, text: str, shortcut: str | QKeySequence, slot: Callable[[], Any], name: str) -> QAction:
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
        self.generate_action = self._action("生成摘要", "Ctrl+Return", self.generate, "generate")
        self.rerun_action = self._action("分段重新生成", "Ctrl+Shift+Return", self.rerun_in_parts, "rerun_in_parts")
        self.stop_action = self._action("停止", "Esc", self.stop, "stop")
        self.copy_action = self._action("复制", "Ctrl+Shift+C", self.copy_summary, "copy")
        self.export_action = self._action("导出", "Ctrl+E", self.choose_export, "export")
        self.settings_action = self._action("设置", "Ctrl+,", self.open_settings, "settings")
        self.amend_action = self._action("修改（新版本）", "Ctrl+Shift+M", self.amend, "amend")
        self.amend_action.setEnabled(False)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel("模型：加载中…")
        self.demo_badge = QLabel(" DEMO ")
        self.demo_badge.setObjectName("demo_badge")
        self.demo_badge.setStyleSheet("background:#c62828; color:white; font-weight:bold; border-radius:3px;")
        self.demo_badge.setVisible(False)
        self.placement_label = QLabel("")
        self.context_label = QLabel("")
        self.speed_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progress_bar")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setVisible(False)
        bar.addWidget(self.progress_bar)
        # Context use, tokens/s and where the layers run are for IT: shown when 技术详情 is ticked (the
        # placement also whenever it carries a warning the doctor should know, such as no GPU found).
        self.tech_details = QCheckBox("技术详情")
        self.tech_details.setObjectName("tech_details")
        self.tech_details.toggled.connect(self._show_tech_details)
        for widget in (self.model_label, self.demo_badge, self.placement_label, self.context_label, self.speed_label,
                       self.tech_details):
            bar.addPermanentWidget(widget)
        self._show_tech_details(False)

    def _show_tech_details(self, shown: bool) -> None:
        self.context_label.setVisible(shown)
        self.speed_label.setVisible(shown)
        self.placement_label.setVisible(shown or bool(self.engine_info and self.engine_info.warning))

    # -- engine --------------------------------------------------------------------------------------

    def load_engine(self, settings: EngineSettings) -> None:
        self.engine_info = None
        self.model_label.setText("模型：加载中…")
        self._set_generating(False)
        self.host.load(settings)

    def _engine_loaded(self, info: EngineInfo) -> None:
        self.engine_info = info
        adapter = f" + LoRA {info.adapter}" if info.lora else ""
        self.model_label.setText(f"模型：{Path(info.model_path).name}（{info.quantization}）{adapter}")
        self.demo_badge.setVisible(info.is_demo)
        self.demo_banner.setVisible(info.is_demo)
        self.placement_label.setText(f"运行于：{info.placement}" + (" ⚠" if info.warning else ""))
        self.placement_label.setToolTip(info.warning)
        self.placement_label.setStyleSheet("color:#b26a00; font-weight:bold;" if info.warning else "")
        self.context_label.setText(f"上下文：0 / {info.n_ctx}")
        self._show_tech_details(self.tech_details.isChecked())
        self._set_generating(False)
        if info.warning:
            self.statusBar().showMessage(f"模型已加载，但{info.warning.split(' / ')[0]}", 15000)
        else:
            self.statusBar().showMessage(f"模型已加载（{info.load_s:.1f} 秒）", 5000)

    def _engine_failed(self, message: str) -> None:
        self.model_label.setText("模型：未加载")
        self._set_generating(False)
        self.show_error("模型加载失败", message)

    # -- documents -----------------------------------------------------------------------------------

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "打开病历", str(Path.home()), "病历 (*.txt *.docx);;所有文件 (*)")
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> bool:
        return self._adopt(lambda: load_document(path), "无法打开病历")

    def paste_document(self) -> None:
        self.set_document_text(QGuiApplication.clipboard().text())

    def set_document_text(self, text: str) -> bool:
        return self._adopt(lambda: document_from_text(text), "无法使用粘贴的内容")

    def _adopt(self, load: Callable[[], Document], failure_title: str) -> bool:
        """Show a new record; on bad input keep the current one and say why."""
        try:
            document = load()
        except MedBriefError as exc:
            self.show_error(failure_title, exc.message)
            return False
        self._set_document(document)
        return True

    def _set_document(self, document: Document) -> None:
        had_summary = self.document is not None and bool(self.summary_pane.editors["chief_complaint"].toPlainText())
        self.document = document
        self.set_signed(False)
        self._kept_codes = {}
        self.demo_draft = False  # the summary on screen was written by the demo model (set with the run or reopen)
        self.report = None
        self.validation = None
        self.evidence = RunEvidence()
        self.set_rejected(False)
        self.document_pane.setPlainText(document.text)
        self.summary_pane.clear()
        self.icd_panel.set_assignments([])
        self.progress.clear()  # the last record's run does not belong to this one
        self.raw_output.clear()
        self.stream_label.setText("")
        self._last_step = None
        self.setWindowTitle(f"MedBrief 病历摘要助手 — {document.file_name}")
        self.statusBar().showMessage(f"已载入 {document.file_name}（{document.encoding}，{len(document.text)} 字）", 8000)
        self.document_changed.emit(document)  # the history says where the last summary went (after this line)
        if had_summary and self.statusBar().currentMessage().startswith("已载入"):
            self.statusBar().showMessage(self.statusBar().currentMessage() + "；上一份摘要已不在窗口中", 8000)

    # -- generation ----------------------------------------------------------------------------------

    def rerun_in_parts(self) -> None:
        """After a rejected draft: the same record again in parts half as long as the last run's."""
        last = self.report.result.extra.get("part_tokens") if self.report is not None else None
        self.generate(part_budget=max(200, int(last) // 2) if last else 1000)

    def set_signed(self, signed: bool) -> None:
        """A signed version is immutable: the summary and the codes are read-only until the doctor asks
        for a new version."""
        self.signed = signed
        for editor in self.summary_pane.editors.values():
            editor.setReadOnly(signed)
        self.icd_panel.setEnabled(not signed)
        self.signed_banner.setVisible(signed)
        self.amend_action.setEnabled(signed)

    def amend(self) -> bool:
        """Start a new version of a signed summary, after asking; the signed one stays in the history."""
        if not self.signed:
            return True
        if not self._confirm(self, "修改已签署的摘要", "此摘要已签署。修改将生成新的草稿版本（需重新审核签署），"
                             "已签署的版本保留在历史记录中。继续吗？"):
            return False
        self.set_signed(False)
        self.statusBar().showMessage("已开始新版本：修改将保存为草稿", 5000)
        return True

    def generate(self, part_budget: int | None = None) -> None:
        if self.generating:
            return
        if self.signed and not self._confirm(
                self, "重新生成已签署的摘要", "此摘要已签署。重新生成将产生新的草稿版本（需重新审核签署），"
                "医生已确认或修改的 ICD 编码会保留。继续吗？"):
            return
        if self.document is None:
            self.show_error("没有病历", "请先打开或粘贴一份病历。")
            return
        if self.engine_info is None:
            self.show_error("模型未就绪", "模型尚未加载成功，请检查“设置”中的模型文件。")
            return
        self.progress.clear()
        self.raw_output.clear()
        self._streamed_chars = 0
        self.stream_label.setText("")
        self._last_step = None
        # The doctor's choices survive a regeneration: a code confirmed or chosen for a diagnosis stays with it.
        self._kept_codes = {a.diagnosis: a for a in self.icd_panel.assignments if a.confirmed}
        self._set_generating(True)
        self.host.run(self.document, self.table, part_budget)

    def stop(self) -> None:
        if self.generating:
            self.host.cancel()
            self.statusBar().showMessage("正在停止…")

    def _set_generating(self, generating: bool) -> None:
        self.generating = generating
        ready = self.engine_info is not None
        self.generate_action.setEnabled(ready and not generating)
        self.rerun_action.setEnabled(ready and not generating and self.rejected)
        self.copy_action.setEnabled(not self.rejected)
        self.export_action.setEnabled(not self.rejected)
        self.stop_action.setEnabled(generating)
        self.progress_bar.setVisible(generating)
        if not generating:
            self.progress_bar.reset()
        self.open_action.setEnabled(not generating)
        self.paste_action.setEnabled(not generating)
        self.settings_action.setEnabled(not generating)

    def _step(self, progress: Any) -> None:
        """A Progress from the worker: the status bar always, the log once per phase or part."""
        line = progress.line() if hasattr(progress, "line") else str(progress)
        key = (getattr(progress, "phase", line), getattr(progress, "part", 0))
        if key != self._last_step:
            self._last_step = key
            self.progress.appendPlainText(f"▶ {line}")
            self.raw_output.appendPlainText(f"\n▶ {line}\n")
        self.statusBar().showMessage(line)
        fraction = getattr(progress, "fraction", None)
        if fraction is not None:
            self.progress_bar.setValue(round(fraction * 1000))

    def _tokens(self, chunk: str) -> None:
        """The model's text goes to 详情 only; the progress pane counts it in words."""
        self._streamed_chars += len(chunk)
        self.stream_label.setText(f"模型已输出 {self._streamed_chars} 字")
        cursor = self.raw_output.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(chunk)
        if self.raw_output.isVisible():
            self.raw_output.setTextCursor(cursor)
            self.raw_output.ensureCursorVisible()

    def _finished(self, report: BriefReport) -> None:
        self.report = report
        self.demo_draft = bool(report.result.model.get("demo"))
        self.evidence = report.result.evidence
        self.set_rejected(report.rejected, report.validation)
        self._set_generating(False)
        self.summary_pane.set_summary(report.result.summary)
        self.set_signed(False)  # a new draft
        kept, self._kept_codes = self._kept_codes, {}
        self.icd_panel.set_assignments([kept.get(a.diagnosis, a) for a in report.icd])
        self.validation = report.validation
        if report.validation is not None:
            self.summary_pane.show_findings(report.validation.findings, report.validation.statements,
                                            report.validation.unchecked)
        self.document_pane.set_marks([])
        timings = report.result.timings
        used = timings.prompt_tokens + timings.completion_tokens
        if self.engine_info is not None:
            self.context_label.setText(f"上下文：{used} / {self.engine_info.n_ctx}")
        self.speed_label.setText(f"{timings.tokens_per_s:.1f} token/s · 首字 {timings.ttft_s:.1f}s")
        elapsed = report.elapsed_s or timings.total_s
        if report.rejected:
            self.statusBar().showMessage(f"未通过核对：摘要与原文不符（用时 {elapsed:.1f} 秒）")
        else:
            self.statusBar().showMessage(f"摘要完成，用时 {elapsed:.1f} 秒", 8000)
        self.report_ready.emit(report)

    def set_rejected(self, rejected: bool, validation: ValidationReport | None = None) -> None:
        """A refused draft stays on screen to be seen, never to be used: no copy, export, review or signing."""
        self.rejected = rejected
        if rejected:
            reasons = "；".join(f.message for f in (validation.findings if validation else [])
                               if f.rule_id in ("R1", "R2"))
            self.rejected_banner.setText("未通过核对：摘要与原文不符，草稿不可复制、导出或签署。"
                                         + (f"{reasons}。" if reasons else "") + "请点击“分段重新生成”。")
        self.rejected_banner.setVisible(rejected)
        self._set_generating(self.generating)
        self.rejected_changed.emit(rejected)

    def _cancelled(self) -> None:
        self._set_generating(False)
        self.progress.appendPlainText("\n■ 已停止")
        self.statusBar().showMessage("已停止", 5000)

    def _failed(self, message: str) -> None:
        self._set_generating(False)
        self.show_error("生成失败", message)

    # -- review --------------------------------------------------------------------------------------

    def current_summary(self) -> StructuredSummary | None:
        try:
            return self.summary_pane.summary()
        except ValidationError as exc:
            self.statusBar().showMessage(f"摘要格式有误：{exc.errors()[0]['msg']}", 8000)
            return None

    def _summary_edited(self) -> None:
        summary = self.current_summary()
        if summary is None or self.document is None:
            return
        self._review(summary, self.document)
        self.icd_panel.sync_diagnoses([d.name for d in summary.diagnoses])
        self.summary_edited.emit(summary)

    def _review(self, summary: StructuredSummary, document: Document, then: Any = None) -> None:
        """The one review (table and run evidence), off this thread; only the latest edit's is shown."""
        table, evidence = self.table, self.evidence

        def shown(report: ValidationReport) -> None:
            if document is not self.document:
                return  # another record was opened meanwhile
            self.validation = report
            self.summary_pane.show_findings(report.findings, report.statements, report.unchecked)
            if then is not None:
                then(report)
            self.reviewed.emit(report)

        self.background.run("review", lambda: validate(summary, document.text, table, evidence), shown,
                            lambda exc: self.show_error("核对失败", f"{type(exc).__name__}: {exc}"))

    def _statement_activated(self, statement: Statement) -> None:
        self.document_pane.show_sources(statement.sources)

    def _finding_activated(self, finding: Finding) -> None:
        if finding.source_spans:
            self.document_pane.show_sources(finding.source_spans)
            return
        if self.validation is not None:
            for statement in self.validation.statements:
                if statement.section == finding.section and statement.index == finding.index:
                    self.document_pane.show_sources(statement.sources)
                    return

    def _refuse_rejected(self, what: str) -> bool:
        if self.rejected:
            self.show_error(f"不能{what}", f"该草稿未通过核对（与原文不符），不能{what}。请分段重新生成。")
        return self.rejected

    def copy_summary(self) -> str:
        if self._refuse_rejected("复制"):
            return ""
        summary = self.current_summary()
        if summary is None:
            return ""
        text = to_text(summary, demo=self.demo_draft)
        QGuiApplication.clipboard().setText(text)
        self.statusBar().showMessage("已复制（演示模型草稿，已标注不可用于临床）" if self.demo_draft
                                     else "已复制，可粘贴到电子病历", 5000)
        return text

    def choose_export(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "导出摘要", str(Path.home() / "摘要.txt"),
                                                   ";;".join(EXPORT_FILTERS.values()))
        if path:
            fmt = next((k for k, v in EXPORT_FILTERS.items() if v == chosen), "txt")
            self.export_to(Path(path), fmt)

    def export_to(self, path: Path, fmt: str) -> bool:
        if self._refuse_rejected("导出"):
            return False
        summary = self.current_summary()
        if summary is None:
            return False
        try:
            path.write_text(export(summary, fmt, self.icd_panel.assignments, demo=self.demo_draft), encoding="utf-8")
        except OSError as exc:
            self.show_error("导出失败", f"无法写入 {path}：{exc.strerror}")
            return False
        self.statusBar().showMessage(f"已导出 {path}", 5000)
        self.exported.emit(str(path), fmt)
        return True

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

    def show_error(self, title: str, message: str) -> None:
        """A plain message in Chinese (the English half of the core's messages is for the CLI and the log),
        never a traceback; the window stays usable."""
        message = chinese(message)
        self.statusBar().showMessage(message, 10000)
        self.error_shown.emit(title, message)
        self._alert(self, title, message)

    def show_saved(self, document: Document, summary: StructuredSummary, icd: list[Any],
                   evidence: RunEvidence, rejected: bool = False) -> None:
        """Reopen a record from the history into the panes, reviewed with its run's evidence."""
        self._set_document(document)
        self.evidence = evidence
        self.summary_pane.set_summary(summary)
        self.icd_panel.set_assignments(icd)
        self.set_rejected(rejected)
        self._review(summary, self.document, then=lambda report: self.set_rejected(rejected, report))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.host.stop()
        self.background.wait()
        self.writes.wait()  # the last autosave reaches the history before the app goes
        super().closeEvent(event)
