"""A run of the model from the window: start (asking first over a signed version), the draft as it is written,
the progress, stop, and the end — a finished draft, a stopped one (its finished parts, never signable, to be
continued), a refusal or a failure. The engine runs in the worker thread; this only shows what it reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot

from desktop.draft_preview import DraftPreview
from inference.pipeline import Report
from inference.progress import Progress, duration_words
from inference.summary.summarizer import StoppedRun
from inference.templates.catalog import DEFAULT_TEMPLATE

if TYPE_CHECKING:
    from desktop.main_window import MainWindow


class Generation(QObject):
    """A QObject living on the GUI thread: the worker's signals reach its slots queued, never on the worker's
    thread (a plain object's method would run there, and touch widgets from it)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.preview = DraftPreview(window)
        worker = window.host.worker
        worker.step.connect(self.step)
        worker.tokens.connect(self.tokens)
        worker.finished.connect(self.finished)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self.cancelled)

    def start(self, part_budget: int | None = None, resume: StoppedRun | None = None) -> None:
        window, record = self.window, self.window.record
        if window.generating:
            return
        if record is not None and record.signed and not window.ask(
                "重新生成已签署的摘要", "此摘要已签署。重新生成将产生新的草稿版本（需重新审核签署），"
                "医生已确认或修改的 ICD 编码会保留。继续吗？"):
            return
        if record is None:
            window.show_error("没有病历", "请先打开或粘贴一份病历。")
            return
        if window.engine_info is None:
            window.show_error("模型未就绪", "模型尚未加载成功，请检查“设置”中的模型文件。")
            return
        window.progress_view.clear()
        if resume is not None:
            window.progress_view.note(f"继续生成：{resume.progress_words()}，生成剩余 {len(resume.remaining)} 段")
        template = window.templates.template if resume is None else window.summary_pane.template
        self.preview.start(template)
        record.regenerating(window.icd_panel.assignments)
        window.generating = True
        window.render()
        window.host.run(record.document, window.table, part_budget, resume,
                        None if template.id == DEFAULT_TEMPLATE else template)

    def resume(self) -> None:
        """继续生成: the parts a stopped run left, after the ones it finished."""
        record = self.window.record
        stopped = record.resumable if record is not None else None
        if stopped is not None:
            self.start(resume=stopped)

    def stop(self) -> None:
        if self.window.generating:
            self.window.host.cancel()
            self.window.statusBar().showMessage("正在停止…（已完成的段落会保留）")

    @Slot(str)
    def tokens(self, chunk: str) -> None:
        self.window.progress_view.tokens(chunk)
        self.preview.tokens(chunk)

    @Slot(object)
    def step(self, progress: Progress) -> None:
        """A Progress from the worker: the status bar always, the log line of its phase or part in place."""
        window = self.window
        window.progress_view.step(progress)
        self.preview.step(progress)
        window.statusBar().showMessage(progress.line())
        window.status.fraction(progress.fraction)

    @Slot(object)
    def finished(self, report: Report) -> None:
        window = self.window
        window.generating = False
        self.preview.finished()
        record = window.record
        if record is None or record.document is not report.document:
            window.render()
            return
        codes = record.adopt_run(report)
        window.summary_pane.set_summary(report.result.summary)
        window.templates.show_template(window.summary_pane.template)
        window.icd_panel.set_assignments(codes)
        if report.validation is not None:
            window.summary_pane.show_findings(report.validation.findings, report.validation.statements,
                                              report.validation.unchecked)
        window.document_pane.set_marks([])
        window.status.ran(report.result.timings)
        window.render()
        elapsed = duration_words(report.elapsed_s or report.result.timings.total_s)
        stopped = report.result.stopped
        if stopped is not None:
            window.progress_view.note(f"■ 已停止（{stopped.progress_words()}），用时 {elapsed}；可点“继续生成”")
            window.statusBar().showMessage(f"已停止：保留已完成的 {len(stopped.finished)} 段，不能签署；可继续生成剩余部分")
        elif report.rejected:
            window.progress_view.note(f"■ 完成，总用时 {elapsed}（未通过核对）")
            window.statusBar().showMessage(f"未通过核对：摘要与原文不符（用时 {elapsed}）")
        else:
            window.progress_view.note(f"■ 完成，总用时 {elapsed}")
            window.statusBar().showMessage(f"摘要完成，用时 {elapsed}", 8000)
        window.report_ready.emit(report)

    @Slot()
    def cancelled(self) -> None:
        """Stopped before any part finished: nothing to keep; what was on screen comes back."""
        window = self.window
        window.generating = False
        self.preview.abandoned()
        window.render()
        window.progress_view.note("\n■ 已停止（尚无完成的段落，未保存）")
        window.statusBar().showMessage("已停止", 5000)

    @Slot(str)
    def failed(self, message: str) -> None:
        window = self.window
        window.generating = False
        self.preview.abandoned()
        window.render()
        window.show_error("生成失败", message)
