"""A plain-text editor that shows marked spans (findings, source spans) with colours and tooltips."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QToolTip, QWidget

ERROR_COLOUR = QColor("#f8c9c4")
WARNING_COLOUR = QColor("#fde7b0")
INFO_COLOUR = QColor("#d7e8fb")
SOURCE_COLOUR = QColor("#c8ecd0")
FOCUS_COLOUR = QColor("#9fd8ab")
SEVERITY_COLOURS = {"error": ERROR_COLOUR, "warning": WARNING_COLOUR, "info": INFO_COLOUR}


@dataclass(frozen=True)
class Mark:
    start: int
    end: int
    colour: QColor
    tooltip: str = ""
    underline: bool = False


class HighlightedEdit(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._marks: list[Mark] = []
        self.setMouseTracking(True)

    @property
    def marks(self) -> list[Mark]:
        return list(self._marks)

    def set_marks(self, marks: list[Mark]) -> None:
        self._marks = [m for m in marks if 0 <= m.start < m.end <= len(self.toPlainText())]
        selections = []
        for mark in self._marks:
            selection = QTextEdit.ExtraSelection()
            text_format = QTextCharFormat()
            text_format.setBackground(mark.colour)
            if mark.underline:
                text_format.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
                text_format.setUnderlineColor(mark.colour.darker(160))
            selection.format = text_format
            cursor = QTextCursor(self.document())
            cursor.setPosition(mark.start)
            cursor.setPosition(mark.end, QTextCursor.MoveMode.KeepAnchor)
            selection.cursor = cursor
            selections.append(selection)
        self.setExtraSelections(selections)

    def reveal(self, start: int, end: int) -> None:
        """Scroll a span into view and put the cursor on it."""
        length = len(self.toPlainText())
        cursor = self.textCursor()
        cursor.setPosition(min(start, length))
        cursor.setPosition(min(end, length), QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        self.ensureCursorVisible()

    def tooltip_at(self, position: int) -> str:
        return "\n".join(m.tooltip for m in self._marks if m.start <= position < m.end and m.tooltip)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            position = self.cursorForPosition(event.pos()).position()
            text = self.tooltip_at(position)
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)


def plain_edit(read_only: bool = False, placeholder: str = "") -> HighlightedEdit:
    edit = HighlightedEdit()
    edit.setReadOnly(read_only)
    edit.setPlaceholderText(placeholder)
    edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
    edit.setTextInteractionFlags(edit.textInteractionFlags() | Qt.TextInteractionFlag.TextSelectableByKeyboard)
    return edit
