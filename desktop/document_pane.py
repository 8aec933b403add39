"""The document pane: the record as loaded (read-only), with source spans highlighted; accepts drops."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from desktop.highlight_edit import FOCUS_COLOUR, SOURCE_COLOUR, HighlightedEdit, Mark
from inference.record.grounding import SourceSpan


class DocumentPane(HighlightedEdit):
    files_dropped = Signal(list)  # local paths, in the order dropped: one record
    sources_shown = Signal(list)  # the SourceSpans just highlighted (the 原件 view follows them)
    text_dropped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("document")
        self.setReadOnly(True)
        self.setAcceptDrops(True)
        self.setPlaceholderText("打开（Ctrl+O）、粘贴（Ctrl+Shift+V）或拖入病历文件：文本、Word、PDF、扫描件或照片、OFD、CDA、"
                                "FHIR；同时拖入的多个文件或一个文件夹合并为一份病历")

    def show_sources(self, spans: list[SourceSpan], focus: int = 0) -> None:
        """Highlight the supporting spans and scroll to the first."""
        marks = [Mark(s.start, s.end, FOCUS_COLOUR if i == focus else SOURCE_COLOUR, f"原文依据（{s.score:.0%}）")
                 for i, s in enumerate(spans)]
        self.set_marks(marks)
        if spans:
            self.reveal(spans[focus].start, spans[focus].end)
            self.sources_shown.emit(spans[focus:] + spans[:focus])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasText():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        local = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []
        if local:
            self.files_dropped.emit(local)
        elif mime.hasText():
            self.text_dropped.emit(mime.text())
        event.acceptProposedAction()
