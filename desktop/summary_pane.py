"""The structured summary: four editable sections, findings highlighted in place, and a findings list."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from desktop.highlight_edit import SEVERITY_COLOURS, HighlightedEdit, Mark, plain_edit
from inference.checks.findings import SEVERITY_LABELS, Finding
from inference.record.grounding import Statement
from inference.record.summary import ABSENT, SECTIONS, Diagnosis, StructuredSummary, exam_item_from_text, section_text

REVALIDATE_DELAY_MS = 400
FINDINGS_MIN_HEIGHT = 120  # about six rows: errors first, then warnings, readable without scrolling at once
MAX_EDIT_DELAY_S = 1.5  # continuous typing still autosaves at least this often (≤ 2 s of work at risk)


NOT_CHECKED = "核对结果：尚未核对（生成或打开摘要后自动核对）"

class SummaryPane(QWidget):
    edited = Signal()  # debounced: the doctor changed the summary
    statement_activated = Signal(object)  # a Statement whose sources should be shown
    finding_activated = Signal(object)  # a Finding

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.editors: dict[str, HighlightedEdit] = {}
        placeholders = {"chief_complaint": "主诉", "present_illness": "现病史",
                        "auxiliary_exams": "每行一项：项目 数值 单位", "diagnoses": "每行一个诊断"}
        heights = {"chief_complaint": 44, "present_illness": 110, "auxiliary_exams": 84, "diagnoses": 76}
        for field_name, heading in SECTIONS:
            label = QLabel(f"【{heading}】")
            label.setObjectName(f"heading_{field_name}")
            editor = plain_edit(placeholder=placeholders[field_name])
            editor.setObjectName(field_name)
            editor.setMinimumHeight(heights[field_name])
            editor.textChanged.connect(self._schedule_edit)
            editor.cursorPositionChanged.connect(lambda name=field_name: self._cursor_moved(name))
            layout.addWidget(label)
            layout.addWidget(editor, 2 if field_name == "present_illness" else 1)
            self.editors[field_name] = editor
        self.findings_label = QLabel(NOT_CHECKED)
        self.findings_list = QListWidget()
        self.findings_list.setObjectName("findings")
        self.findings_list.setMinimumHeight(FINDINGS_MIN_HEIGHT)
        self.findings_list.setWordWrap(True)
        self.findings_list.itemActivated.connect(self._finding_clicked)
        self.findings_list.itemClicked.connect(self._finding_clicked)
        # The arrow keys move through the findings too, and the record follows.
        self.findings_list.currentItemChanged.connect(lambda item, _previous: item and self._finding_clicked(item))
        # The findings sit under the panes, beside the progress (MainWindow places ``findings_box``): in the
        # summary column they pushed the four sections into each other at 1366×768.
        self.findings_box = QWidget()
        self.findings_box.setObjectName("findings_box")
        box = QVBoxLayout(self.findings_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.findings_label)
        box.addWidget(self.findings_list, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REVALIDATE_DELAY_MS)
        self._timer.timeout.connect(self._emit_edited)
        self._pending_since: float | None = None
        self._statements: list[Statement] = []
        self._findings: list[Finding] = []
        self._loading = False

    # -- content ---------------------------------------------------------------------------------

    def set_summary(self, summary: StructuredSummary) -> None:
        self._loading = True
        try:
            self.editors["chief_complaint"].setPlainText(summary.chief_complaint)
            self.editors["present_illness"].setPlainText(summary.present_illness)
            self.editors["auxiliary_exams"].setPlainText("\n".join(i.as_text() for i in summary.auxiliary_exams) or ABSENT)
            self.editors["diagnoses"].setPlainText(section_text(summary, "diagnoses") or ABSENT)
        finally:
            self._loading = False

    def texts(self) -> dict[str, str]:
        return {name: editor.toPlainText() for name, editor in self.editors.items()}

    def show_texts(self, texts: dict[str, str]) -> None:
        """Text that is not the doctor's edit (a draft as it streams, what was on screen before a stopped run):
        no review, no autosave; an editor whose text is unchanged keeps its cursor."""
        self._loading = True
        try:
            for name, text in texts.items():
                editor = self.editors[name]
                if editor.toPlainText() != text:
                    editor.setPlainText(text)
        finally:
            self._loading = False

    def summary(self) -> StructuredSummary:
        """The summary as the doctor has edited it."""
        exams = [line for line in self._lines("auxiliary_exams") if line != ABSENT]
        diagnoses = [line for line in self._lines("diagnoses") if line != ABSENT]
        return StructuredSummary(
            chief_complaint=self.editors["chief_complaint"].toPlainText().strip(),
            present_illness=self.editors["present_illness"].toPlainText().strip(),
            auxiliary_exams=[exam_item_from_text(line) for line in exams],
            diagnoses=[Diagnosis(name=line[:80]) for line in diagnoses],
        )

    def clear(self) -> None:
        self._loading = True
        for editor in self.editors.values():
            editor.clear()
        self._loading = False
        self.show_findings([], [])
        self.findings_label.setText(NOT_CHECKED)  # an empty list here means nothing was checked, not "no problem"

    def _lines(self, field_name: str) -> list[str]:
        return [line.strip() for line in self.editors[field_name].toPlainText().splitlines() if line.strip()]

    # -- findings ----------------------------------------------------------------------------------

    def show_findings(self, findings: list[Finding], statements: list[Statement], unchecked: int = 0) -> None:
        self._findings = findings
        self._statements = statements
        marks: dict[str, list[Mark]] = {name: [] for name in self.editors}
        for finding in findings:
            span = self.editor_span(finding)
            if span is not None:
                tooltip = f"[{SEVERITY_LABELS[finding.severity]} {finding.rule_id}] {finding.message}"
                if finding.suggestion:
                    tooltip += f"\n建议：{finding.suggestion}"
                marks[finding.section].append(Mark(span[0], span[1], SEVERITY_COLOURS[finding.severity], tooltip, True))
        for name, editor in self.editors.items():
            editor.set_marks(marks[name])
        self.findings_list.clear()
        for finding in findings:
            text = f"[{SEVERITY_LABELS[finding.severity]}] {finding.message}"
            if finding.suggestion:
                text += f"（建议：{finding.suggestion}）"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, finding)
            item.setBackground(SEVERITY_COLOURS[finding.severity])
            item.setToolTip(text + "".join(f"\n· {detail}" for detail in finding.details))
            self.findings_list.addItem(item)
        counts = {level: sum(f.severity == level for f in findings) for level in SEVERITY_LABELS}
        note = f"；另有 {unchecked} 条原文说法不一，未能自动核对" if unchecked else ""
        self.findings_label.setText(
            ("核对结果：未发现问题" if not findings else
             f"核对结果：错误 {counts['error']}，警告 {counts['warning']}，提示 {counts['info']}") + note)

    def editor_span(self, finding: Finding) -> tuple[int, int] | None:
        """Where a finding sits in its section's editor text."""
        if finding.section not in self.editors:
            return None
        if finding.section in ("chief_complaint", "present_illness"):
            if finding.span is None:
                return None
            return finding.span
        if finding.index is None:
            return None
        text = self.editors[finding.section].toPlainText()
        lines = text.split("\n")
        non_empty = [i for i, line in enumerate(lines) if line.strip()]
        if finding.index >= len(non_empty):
            return None
        line_no = non_empty[finding.index]
        line_start = sum(len(line) + 1 for line in lines[:line_no])
        start, end = finding.span if finding.span else (0, len(lines[line_no]))
        return line_start + start, line_start + min(end, len(lines[line_no]))

    def _finding_clicked(self, item: QListWidgetItem) -> None:
        finding: Finding = item.data(Qt.ItemDataRole.UserRole)
        span = self.editor_span(finding)
        if span is not None:
            self.editors[finding.section].reveal(*span)
        self.finding_activated.emit(finding)

    # -- statements ------------------------------------------------------------------------------

    def statement_at(self, field_name: str, position: int) -> Statement | None:
        statements = [s for s in self._statements if s.section == field_name]
        if not statements:
            return None
        if field_name in ("chief_complaint", "present_illness"):
            before = [s for s in statements if s.offset <= position]
            return before[-1] if before else statements[0]
        text = self.editors[field_name].toPlainText()
        line_no = text[:position].count("\n")
        index = sum(1 for line in text.split("\n")[:line_no] if line.strip())
        return next((s for s in statements if s.index == index), None)

    def _cursor_moved(self, field_name: str) -> None:
        if self._loading:
            return
        statement = self.statement_at(field_name, self.editors[field_name].textCursor().position())
        if statement is not None:
            self.statement_activated.emit(statement)

    def _schedule_edit(self) -> None:
        if self._loading:
            return
        now = time.monotonic()
        if self._pending_since is None:
            self._pending_since = now
        if now - self._pending_since >= MAX_EDIT_DELAY_S:
            self._timer.stop()
            self._emit_edited()
        else:
            self._timer.start()

    def _emit_edited(self) -> None:
        self._pending_since = None
        self.edited.emit()
