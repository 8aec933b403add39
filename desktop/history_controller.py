"""Connects the main window to the history store: every run recorded, every edit autosaved, status,
reopen. The store is headless; this is the only place the two meet."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMessageBox

from desktop.history_panel import HistoryPanel
from desktop.main_window import MainWindow
from desktop.signing import Signature, SignatureRequest, ask_signature
from desktop.stats_view import StatsDialog
from inference.documents import Document
from inference.errors import StorageError
from inference.history.store import HistoryStore
from inference.icd.coding import IcdAssignment
from inference.llm.gguf_header import model_fingerprint
from inference.open_record import OpenRecord
from inference.pipeline import Report
from inference.record.status import Attestation, DraftStatus
from inference.templates.content import stored_summary


class HistoryController(QObject):
    def __init__(self, window: MainWindow, store: HistoryStore, confirm: Callable[[str], bool] | None = None,
                 sign: Callable[[MainWindow, SignatureRequest], Signature | None] | None = None) -> None:
        """``sign(window, SignatureRequest) -> Signature | None`` asks who signs (tests answer without a dialog)."""
        super().__init__(window)
        self.window = window
        self.store = store
        self.document_id: int | None = None
        self._sign = sign or ask_signature
        self.signer = ""  # the doctor's name, asked once per session: a ward PC is shared under one OS account
        self.writes = window.writes  # autosave and status: off the GUI thread, in order
        self._unsaved_run: Report | None = None  # a run the history did not take yet
        self._loading = False
        self.panel = HistoryPanel(store, confirm or self._confirm, window.background)
        self.panel.open_requested.connect(self.reopen)
        self.panel.store_failed.connect(lambda message: window.show_error("历史记录查询失败", message))
        self.panel.deleted.connect(self._deleted)
        self.dock = QDockWidget("历史记录", window)
        self.dock.setObjectName("history_dock")
        self.dock.setWidget(self.panel)
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.dock)
        self.dock.hide()
        self.dock.visibilityChanged.connect(lambda visible: visible and self.panel.refresh())
        toggle = self.dock.toggleViewAction()
        toggle.setText("历史记录")
        toggle.setShortcut(QKeySequence("Ctrl+H"))
        window.toolbar.addSeparator()
        window.toolbar.addAction(toggle)
        self.stats_action = QAction("统计", window)
        self.stats_action.setObjectName("stats_action")
        self.stats_action.triggered.connect(self.show_stats)
        window.toolbar.addAction(self.stats_action)
        self.panel.cohort_exported.connect(
            lambda count, path: window.statusBar().showMessage(f"已导出 {count} 份记录的队列（假名化）：{path}", 6000))
        self.review_action = self._status_action("标记已审核", "Ctrl+Shift+R", DraftStatus.REVIEWED)
        self.sign_action = self._status_action("签署", "Ctrl+Shift+S", DraftStatus.SIGNED)
        window.record_changed.connect(self._record_changed)
        window.report_ready.connect(self._record_run)
        window.host.worker.failure_kind.connect(self._record_failure)
        window.summary_edited.connect(lambda _summary: self.autosave("edit"))
        window.codes_changed.connect(lambda: self.autosave("accept_code"))
        window.document_changed.connect(self._document_changed)
        window.exported.connect(self._exported)

    def _status_action(self, text: str, shortcut: str, status: str) -> QAction:
        action = QAction(text, self.window)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda: self.set_status(status))
        self.window.toolbar.addAction(action)
        return action

    def _record_changed(self) -> None:
        record = self.window.record
        allowed = record is None or record.can_sign
        self.review_action.setEnabled(allowed)
        self.sign_action.setEnabled(allowed)

    def _refresh_panel(self) -> None:
        """Only a visible list is re-queried (autosave runs every ~1.5 s while typing); showing it refreshes."""
        if not self.dock.isHidden():
            self.panel.refresh()

    def _confirm(self, question: str) -> bool:
        answer = QMessageBox.question(self.window, "确认删除", question)
        return answer == QMessageBox.StandardButton.Yes

    def _record_run(self, report: Report) -> None:
        self._unsaved_run = report
        if self._save_unsaved_run(tell=True) and [a.to_record() for a in self.window.icd_panel.assignments] != [
                a.to_record() for a in report.icd]:
            self.autosave("accept_code")  # the doctor's codes carried over a regeneration: a version of their own

    def _save_unsaved_run(self, tell: bool = False) -> bool:
        """Keep a run whose first save failed: retried at every autosave until the history takes it. The
        draft never leaves the window because of a failed save."""
        report = self._unsaved_run
        if report is None:
            return True
        info = self.window.engine_info
        try:
            fingerprint = (info.fingerprint or model_fingerprint(info.model_path)) if info and info.model_path else ""
        except OSError:
            fingerprint = ""
        try:
            recorded = self.store.record_run(report.run_record(), self.window.config.engine.model_dump(mode="json"),
                                             fingerprint)
        except StorageError as exc:
            message = f"{exc.message}\n摘要仍在窗口中，可以继续编辑；每次自动保存时会重试。"
            if tell:
                self.window.show_error("未能保存到历史记录", message)
            else:
                self.window.statusBar().showMessage("摘要尚未保存到历史记录（重试失败）", 5000)
            return False
        self._unsaved_run = None
        self.document_id = recorded.document_id
        self._refresh_panel()
        return True

    def show_stats(self) -> StatsDialog:
        dialog = StatsDialog(self.store, self.panel.background, self.window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _record_failure(self, error: str, exit_code: int) -> None:
        """A run that ended without a draft, counted by the statistics (its type, not its words)."""
        model = Path(self.window.engine_info.model_path).name if self.window.engine_info else ""
        self.writes.run("failure", lambda: self.store.log_failure(error, exit_code, model), lambda _none: None,
                        lambda _exc: None)  # a failure that cannot be counted is still shown in the window

    def autosave(self, action: str = "edit") -> None:
        """Save the summary on screen as a new version if it changed: written off the GUI thread, in order."""
        if self._loading or not self._save_unsaved_run():
            return
        document_id, summary = self.document_id, self.window.current_summary()
        if document_id is None or summary is None:
            return
        icd = [a.to_record() for a in self.window.icd_panel.assignments]

        def saved(version_id: int | None) -> None:
            if version_id is not None:
                self.window.statusBar().showMessage("已自动保存", 2000)
                self._refresh_panel()

        # A failed autosave leaves the edit in the window; the next one retries.
        self.writes.run("autosave", lambda: self.store.save_edit(document_id, summary, icd, action=action), saved,
                        lambda exc: self.window.show_error("自动保存失败", getattr(exc, "message", str(exc))))

    def signing_blockers(self) -> tuple[str, ...]:
        record = self.window.record
        return record.blockers(self.window.icd_panel.assignments, self.window.table) if record is not None else ()

    def set_status(self, status: str) -> None:
        document_id = self.document_id
        if document_id is None:
            self.window.show_error("没有可审核的摘要", "请先生成或从历史记录打开一份摘要。")
            return
        record, blockers = self.window.record, self.signing_blockers()
        signature = self._sign(self.window, SignatureRequest(status, self.signer, blockers))
        if signature is None:
            self.window.statusBar().showMessage(f"未{DraftStatus(status).label.removeprefix('已')}", 4000)
            return
        self.signer = signature.signer
        self.autosave()  # queued first: the status applies to the version on screen

        overridden = blockers if signature.override else ()
        standing = tuple(f.rule_id for f in record.validation.findings) \
            if record is not None and record.validation is not None else None

        def changed(attestation: Attestation) -> None:
            self.window.statusBar().showMessage(f"已标记为{DraftStatus(status).label}（{signature.signer}）", 4000)
            if record is not None and self.document_id == document_id:
                self.window.attested(record, attestation)
            self._refresh_panel()

        self.writes.run("status", lambda: self.store.set_status(document_id, status, signer=signature.signer,
                                                                override=signature.override, overridden=overridden,
                                                                standing_rules=standing),
                        changed,
                        lambda exc: self.window.show_error("状态未更改", getattr(exc, "message", str(exc))))

    def reopen(self, document_id: int) -> None:
        try:
            document = self.store.opened_document(document_id)
            versions = self.store.versions(document_id)
            evidence = self.store.evidence(document_id)
        except StorageError as exc:
            self.window.show_error("无法打开记录", exc.message)
            return
        latest = versions[-1]
        try:
            demo = self.store.from_demo(document_id)
            attestation = self.store.attestations(document_id).get(latest.id)
        except StorageError:
            demo, attestation = False, None
        try:
            summary = stored_summary(latest.summary)
        except ValueError:
            self.window.show_error("无法打开记录", f"记录 {document_id} 的摘要已损坏，无法读取")
            return
        self._loading = True
        try:
            self.window.show_saved(OpenRecord.reopened(document, evidence, latest.status, demo, attestation, summary),
                                   summary, [IcdAssignment.from_record(item) for item in latest.icd])
        finally:
            self._loading = False
        self.document_id = document_id
        self.window.statusBar().showMessage(
            f"已打开 {document.file_name}（v{latest.number}，{DraftStatus(latest.status).label}）", 5000)

    def _document_changed(self, document: Document) -> None:
        if self._loading:
            return
        had = self.document_id is not None or self._unsaved_run is not None
        if not self._save_unsaved_run():  # a last try: the window now shows another record
            self.window.show_error("上一份摘要未能保存", "历史记录未能保存上一份摘要（已从窗口移除）。请检查磁盘空间与数据目录权限。")
        elif had:
            self.window.statusBar().showMessage(
                f"已载入 {document.file_name}；上一份摘要已保存在历史记录中，可在“历史记录”中打开", 8000)
        self._unsaved_run = None
        self.document_id = None

    def _deleted(self, document_id: int) -> None:
        if document_id == self.document_id:
            self.document_id = None

    def _exported(self, path: str, fmt: str) -> None:
        try:
            self.store.log_export(self.document_id, fmt, path)
        except StorageError as exc:
            self.window.show_error("审计日志写入失败", exc.message)
