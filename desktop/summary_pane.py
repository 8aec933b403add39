"""The structured summary: the sections of its template (the four by default), each editable, findings
highlighted in place, and a findings list. A text section is edited as text; a list section one item a line."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from desktop.highlight_edit import SEVERITY_COLOURS, HighlightedEdit, Mark, plain_edit
from inference.checks.findings import SEVERITY_LABELS, Finding
from inference.record.grounding import Statement
from inference.record.summary import ABSENT, StructuredSummary
from inference.templates.catalog import DEFAULT_TEMPLATE, default_template
from inference.templates.content import AnySummary, TemplatedSummary, content_of, dumped, item_from_line, item_text
from inference.templates.spec import SectionSpec, SummaryTemplate

REVALIDATE_DELAY_MS = 400
FINDINGS_MIN_HEIGHT = 120  # about six rows: errors first, then warnings, readable without scrolling at once
MAX_EDIT_DELAY_S = 1.5  # continuous typing still autosaves at least this often (≤ 2 s of work at risk)


NOT_CHECKED = "核对结果：尚未核对（生成或打开摘要后自动核对）"
PLACEHOLDERS = {"values": "每行一项：项目 数值 单位", "diagnoses": "每行一个诊断",
                "medications": "每行一种药：药名 剂量 途径 频次", "dates": "每行一个：日期 事件"}
SHORT_TEXT_CHARS = 300  # a text section this short (主诉) gets a two-line box; a longer one (现病史) grows


def _height(spec: SectionSpec) -> int:
    if spec.kind == "text":
        return 44 if spec.char_bound <= SHORT_TEXT_CHARS else 110
    return 84 if spec.kind in ("values", "medications") else 76


class SummaryPane(QWidget):
    edited = Signal()  # debounced: the doctor changed the summary
    statement_activated = Signal(object)  # a Statement whose sources should be shown
    finding_activated = Signal(object)  # a Finding

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.editors: dict[str, HighlightedEdit] = {}
        self.template = default_template()
        self._sections = QVBoxLayout()
        self._sections.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._sections, 1)
        self._build(self.template)
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

    # -- the template's sections -------------------------------------------------------------------

    def _build(self, template: SummaryTemplate) -> None:
        while self._sections.count():
            widget = self._sections.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.editors = {}
        for spec in template.sections:
            label = QLabel(f"【{spec.heading}】")
            label.setObjectName(f"heading_{spec.id}")
            editor = plain_edit(placeholder=PLACEHOLDERS.get(spec.kind, spec.heading))
            editor.setObjectName(spec.id)
            editor.setMinimumHeight(_height(spec))
            editor.textChanged.connect(self._schedule_edit)
            editor.cursorPositionChanged.connect(lambda name=spec.id: self._cursor_moved(name))
            self._sections.addWidget(label)
            self._sections.addWidget(editor, 2 if _height(spec) > 100 else 1)
            self.editors[spec.id] = editor
        self.template = template

    def set_template(self, template: SummaryTemplate) -> None:
        """Editors for ``template``'s sections (the summary on screen is cleared when they change)."""
        if template != self.template:
            self._build(template)
            self.show_findings([], [])
            self.findings_label.setText(NOT_CHECKED)

    def _kind(self, section_id: str) -> str:
        return self.template.section(section_id).kind

    # -- content ---------------------------------------------------------------------------------

    def set_summary(self, summary: AnySummary) -> None:
        """Show a summary, with the editors of the template it was written with."""
        self.set_template(summary.template if isinstance(summary, TemplatedSummary) else default_template())
        self._loading = True
        try:
            for spec in self.template.sections:
                if isinstance(summary, TemplatedSummary):
                    content = summary.content(spec.id)
                    text = content if isinstance(content, str) else "\n".join(item_text(i) for i in content)
                else:
                    value = getattr(summary, spec.id)
                    text = value if isinstance(value, str) else "\n".join(item_text(i) for i in value)
                self.editors[spec.id].setPlainText(text or ABSENT)
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
                editor = self.editors.get(name)
                if editor is not None and editor.toPlainText() != text:
                    editor.setPlainText(text)
        finally:
            self._loading = False

    def summary(self) -> AnySummary:
        """The summary as the doctor has edited it: the four sections, or a template's. Raises ValueError (a
        pydantic ValidationError) on a line that cannot be an item."""
        sections = {}
        for spec in self.template.sections:
            if spec.kind == "text":
                sections[spec.id] = self.editors[spec.id].toPlainText().strip()
            else:
                sections[spec.id] = [item_from_line(spec.kind, line) for line in self._lines(spec.id) if line != ABSENT]
        if self.template.id == DEFAULT_TEMPLATE:
            return StructuredSummary(**sections)
        return TemplatedSummary(self.template, {spec.id: content_of(spec, dumped(sections[spec.id]))
                                                for spec in self.template.sections})

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
        if self._kind(finding.section) == "text":
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
        if self._kind(field_name) == "text":
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

