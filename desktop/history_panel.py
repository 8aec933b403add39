"""The history panel: records by time, full-text search, filters; reopen, compare, audit, delete."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.background import Background
from desktop.file_dialogs import ask_path
from desktop.highlight_edit import ERROR_COLOUR, SOURCE_COLOUR, Mark, plain_edit
from inference.errors import InputError
from inference.history.cohort import CohortQuery, find_cohort, parse_query
from inference.history.research_export import export_cohort
from inference.history.store import HistoryStore, RecordSummary
from inference.paths import write_private
from inference.record.status import STATUS_LABELS

COHORT_FILTERS = ("CSV (*.csv)", "JSON Lines (*.jsonl)")
ACTION_LABELS = {"generate": "生成", "edit": "编辑", "status": "状态变更", "accept_code": "确认编码",
                 "export": "导出", "delete": "删除", "recover": "修复历史库", "cohort_export": "队列导出",
                 "generate_failed": "生成失败"}


def audit_detail(action: str, detail: dict[str, Any] | None) -> str:
    """An audit event's detail in words, not a Python dict."""
    detail = detail or {}
    if action == "status":
        words = f"{STATUS_LABELS.get(detail.get('old', ''), detail.get('old', ''))} → " \
                f"{STATUS_LABELS.get(detail.get('new', ''), detail.get('new', ''))}"
        if detail.get("signer"):
            words += f"，签署医生 {detail['signer']}"
        if detail.get("overridden"):
            words += f"，签署时未处理：{'；'.join(str(item) for item in detail['overridden'])}"
        if detail.get("override"):
            words += f"，越过提示的理由：{detail['override']}"
        return words
    if action == "generate":
        return f"模型 {detail.get('model', '')}，提示词版本 {detail.get('prompt_version', '')}"
    if action == "export":
        return f"导出为 {detail.get('format', '')}：{detail.get('target', '')}"
    if action == "cohort_export":
        return (f"条件 {detail.get('query', '')}，{detail.get('records', 0)} 份记录，{detail.get('format', '')} → "
                f"{detail.get('target', '')}" + ("，含病历标识" if detail.get("identified") else "，假名化"))
    if action == "generate_failed":
        return f"{detail.get('error', '')}（退出码 {detail.get('exit_code', '')}），模型 {detail.get('model', '')}"
    if action == "delete":
        return f"删除 {detail.get('file_name', '')}"
    if action == "recover":
        return f"损坏的文件已移至 {detail.get('damaged_file', '')}，已找回可读的记录"
    return "；".join(f"{key} {value}" for key, value in detail.items())


def local_time(at: datetime) -> str:
    """The history keeps UTC; the doctor reads the ward's local time."""
    return f"{at.replace(tzinfo=timezone.utc).astimezone():%Y-%m-%d %H:%M:%S}"


class HistoryPanel(QWidget):
    open_requested = Signal(int)  # document id
    deleted = Signal(int)
    store_failed = Signal(str)  # a query the history could not answer

    cohort_exported = Signal(int, str)  # records, file
    refreshed = Signal()  # the list shows the latest query's records (queried off the GUI thread)

    def __init__(self, store: HistoryStore, confirm: Callable[[str], bool], background: Background,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.background = background
        self.confirm = confirm
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.search_box = QLineEdit()
        self.search_box.setObjectName("history_search")
        self.search_box.setPlaceholderText("全文检索病历与摘要（如 心衰、NT-proBNP）")
        self.search_box.returnPressed.connect(self.refresh)
        layout.addWidget(self.search_box)
        filters = QHBoxLayout()
        self.status_filter = QComboBox()
        self.status_filter.addItem("全部状态", None)
        for status, label in STATUS_LABELS.items():
            self.status_filter.addItem(label, status)
        self.status_filter.currentIndexChanged.connect(self.refresh)
        self.diagnosis_filter = QLineEdit()
        self.diagnosis_filter.setPlaceholderText("诊断")
        self.diagnosis_filter.returnPressed.connect(self.refresh)
        self.icd_filter = QLineEdit()
        self.icd_filter.setPlaceholderText("ICD 编码")
        self.icd_filter.returnPressed.connect(self.refresh)
        for widget in (self.status_filter, self.diagnosis_filter, self.icd_filter):
            filters.addWidget(widget)
        layout.addLayout(filters)
        cohort = QHBoxLayout()
        self.cohort_box = QLineEdit()
        self.cohort_box.setObjectName("cohort_query")
        self.cohort_box.setPlaceholderText("队列条件：LVEF<40% 且 I50*、NT-proBNP>=1000 pg/mL、诊断:心衰")
        self.cohort_box.setToolTip("检索最新版本满足全部条件的记录：数值阈值（须写单位，可换算）、ICD 编码及其下级编码、诊断用语；"
                                   "以“且”“and”或“&”连接。与上方状态筛选同时生效。")
        self.cohort_box.returnPressed.connect(self.refresh)
        export = QPushButton("导出队列…")
        export.setObjectName("cohort_export")
        export.clicked.connect(self.export_cohort)
        cohort.addWidget(self.cohort_box, 1)
        cohort.addWidget(export)
        layout.addLayout(cohort)
        self.table = QTableWidget(0, 5)
        self.table.setObjectName("history_rows")
        self.table.setHorizontalHeaderLabels(["时间", "状态", "文件", "诊断", "编码"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.open_selected())
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        for text, slot in (("打开", self.open_selected), ("对比草稿与终稿", self.compare_selected),
                           ("审计日志", self.show_audit), ("删除", self.delete_selected)):
            button = QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.records: list[RecordSummary] = []
        self.refresh()

    def refresh(self) -> None:
        if self.cohort_box.text().strip():
            self._refresh_cohort()
            return
        filters = {"query": self.search_box.text().strip() or None, "status": self.status_filter.currentData(),
                   "diagnosis": self.diagnosis_filter.text().strip() or None,
                   "icd_code": self.icd_filter.text().strip() or None}
        self.background.run("history_list", lambda: self.store.list_records(**filters), self._show,
                            lambda exc: self.store_failed.emit(getattr(exc, "message", str(exc))))

    def _cohort_query(self) -> CohortQuery:
        return parse_query(self.cohort_box.text(), status=self.status_filter.currentData())

    def _refresh_cohort(self) -> None:
        def members() -> list[RecordSummary]:
            return [RecordSummary(m.document_id, m.file_name, m.updated_at, m.updated_at, m.status, 0,
                                  m.diagnoses.replace("\n", "、"), m.icd_codes, "")
                    for m in find_cohort(self.store, self._cohort_query()).members]

        self.background.run("history_list", members, self._show,
                            lambda exc: self.store_failed.emit(getattr(exc, "message", str(exc))))

    def export_cohort(self) -> None:
        """The cohort as research rows (pseudonymous; NOTE_NLP-shaped CSV or JSONL), audited."""
        if not self.cohort_box.text().strip():
            self.store_failed.emit("请先在“队列条件”中写出检索条件")
            return
        path = self.choose_export_path()
        if not path:
            return
        fmt = "jsonl" if path.lower().endswith(".jsonl") else "csv"

        def write() -> int:
            cohort = find_cohort(self.store, self._cohort_query())
            text = export_cohort(self.store, cohort, fmt, path)
            try:
                write_private(Path(path), text)
            except OSError as exc:
                raise InputError(f"无法写入 {path}：{exc.strerror}") from exc
            return len(cohort.members)

        self.background.run("cohort_export", write, lambda count: self.cohort_exported.emit(count, path),
                            lambda exc: self.store_failed.emit(getattr(exc, "message", None) or str(exc)))

    def choose_export_path(self) -> str:
        chosen = ask_path(self, "导出队列（假名化）", "save", list(COHORT_FILTERS), "队列.csv")
        return str(chosen[0]) if chosen is not None else ""

    def _show(self, records: list[RecordSummary]) -> None:
        self.records = records
        self.table.setRowCount(len(self.records))
        for row, record in enumerate(self.records):
            values = [f"{record.updated_at:%m-%d %H:%M}", STATUS_LABELS.get(record.status, record.status),
                      record.file_name, record.diagnoses, record.icd_codes]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(record.preview)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.refreshed.emit()

    def selected_record(self) -> RecordSummary | None:
        rows = self.table.selectionModel().selectedRows()
        return self.records[rows[0].row()] if rows else None

    def open_selected(self) -> None:
        record = self.selected_record()
        if record is not None:
            self.open_requested.emit(record.document_id)

    def delete_selected(self) -> None:
        record = self.selected_record()
        if record is None:
            return
        if not self.confirm(f"确定删除“{record.file_name}”的全部记录吗？病历原文和摘要将从数据库和检索中移除，此操作会记入审计日志。"):
            return
        self.store.delete_record(record.document_id)
        self.deleted.emit(record.document_id)
        self.refresh()

    def compare_selected(self) -> None:
        record = self.selected_record()
        if record is None:
            return
        draft, final = self.store.draft_and_final(record.document_id)
        dialog = QDialog(self)
        dialog.setWindowTitle(f"对比：{record.file_name}（模型草稿 v{draft.number} / 当前 v{final.number}，"
                              f"{STATUS_LABELS.get(final.status, final.status)}）")
        splitter = QSplitter(Qt.Orientation.Horizontal)
        left, right = plain_edit(read_only=True), plain_edit(read_only=True)
        left.setObjectName("compare_draft")
        right.setObjectName("compare_final")
        draft_text, final_text = compare_text(draft.emr_text, draft.icd), compare_text(final.emr_text, final.icd)
        left.setPlainText(draft_text)
        right.setPlainText(final_text)
        left.set_marks(_changed_lines(draft_text, final_text, ERROR_COLOUR))
        right.set_marks(_changed_lines(final_text, draft_text, SOURCE_COLOUR))
        for title, edit in (("模型草稿", left), ("医生当前版本", right)):
            holder = QWidget()
            column = QVBoxLayout(holder)
            column.addWidget(QLabel(title))
            column.addWidget(edit)
            splitter.addWidget(holder)
        layout = QVBoxLayout(dialog)
        layout.addWidget(splitter)
        dialog.resize(1000, 560)
        dialog.show()

    def show_audit(self) -> None:
        record = self.selected_record()
        events = self.store.audit_log(record.document_id if record else None)
        dialog = QDialog(self)
        dialog.setWindowTitle("审计日志" + (f"：{record.file_name}" if record else "（全部）"))
        table = QTableWidget(len(events), 5)
        table.setObjectName("audit_rows")
        table.setHorizontalHeaderLabels(["时间", "系统用户", "操作", "记录", "详情"])
        for row, event in enumerate(events):
            for column, value in enumerate([local_time(event.at), event.os_user,
                                            ACTION_LABELS.get(event.action, event.action),
                                            str(event.document_id or ""), audit_detail(event.action, event.detail)]):
                table.setItem(row, column, QTableWidgetItem(value))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(True)
        table.resizeColumnsToContents()  # time, user, action, record: as wide as they are
        header = table.horizontalHeader()
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)  # the signer and the reason, wrapped
        header.sectionResized.connect(lambda *_: table.resizeRowsToContents())
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        dialog.resize(1000, 520)
        table.resizeRowsToContents()
        dialog.show()


def compare_text(emr_text: str, icd: list[dict[str, Any]] | None) -> str:
    """A version as compared: its text and its codes, so a changed or confirmed code shows as a changed line."""
    lines = [f"{item.get('diagnosis', '')}：{item.get('code') or '未编码'} {item.get('name') or ''}".rstrip()
             + ("（已确认）" if item.get("confirmed") else "") for item in icd or []]
    return emr_text.rstrip("\n") + ("\n\n【ICD-10】\n" + "\n".join(lines) if lines else "") + "\n"


def _changed_lines(text: str, other: str, colour) -> list[Mark]:  # type: ignore[no-untyped-def]
    other_lines = set(other.splitlines())
    marks, offset = [], 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\n")
        if stripped and stripped not in other_lines:
            close = difflib.get_close_matches(stripped, list(other_lines), n=1)
            marks.append(Mark(offset, offset + len(stripped), colour, f"对应：{close[0]}" if close else "新增/删除"))
        offset += len(line)
    return marks
