"""The window's central widget: the banners over record | summary | ICD panel, with findings | progress below.
It fits 1366×768 (the common ward PC): the summary and ICD columns scroll rather than squeeze."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QSplitter, QVBoxLayout, QWidget

from desktop.background import Background
from desktop.banners import Banners
from desktop.document_pane import DocumentPane
from desktop.icd_panel import IcdPanel
from desktop.progress_view import ProgressView
from desktop.summary_pane import SummaryPane

EDITABLE_TITLE, SIGNED_TITLE = "结构化摘要（可编辑）", "结构化摘要（已签署，只读）"
STREAMING_TITLE = "结构化摘要（正在生成，尚未核对）"


def _scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def _titled(label: QLabel, widget: QWidget) -> QWidget:
    holder = QWidget()
    layout = QVBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    label.setStyleSheet("font-weight:bold; padding:2px;")
    layout.addWidget(label)
    layout.addWidget(widget, 1)
    return holder


class WindowLayout(QWidget):
    def __init__(self, background: Background, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.banners = Banners()
        layout.addWidget(self.banners)
        self.document_pane = DocumentPane()
        self.summary_pane = SummaryPane()
        self.icd_panel = IcdPanel(background)
        self.progress_view = ProgressView()
        self.summary_title = QLabel(EDITABLE_TITLE)
        panes = QSplitter(Qt.Orientation.Horizontal)
        panes.addWidget(_titled(QLabel("病历原文"), self.document_pane))
        panes.addWidget(_titled(self.summary_title, _scrolling(self.summary_pane)))
        panes.addWidget(_scrolling(self.icd_panel))
        panes.setSizes([400, 500, 450])  # the ICD panel keeps room for code names with 历史记录 open
        below = QSplitter(Qt.Orientation.Horizontal)
        below.addWidget(self.summary_pane.findings_box)
        below.addWidget(self.progress_view)
        below.setSizes([760, 600])
        vertical = QSplitter(Qt.Orientation.Vertical)
        vertical.addWidget(panes)
        vertical.addWidget(below)
        vertical.setStretchFactor(0, 3)
        vertical.setStretchFactor(1, 1)
        vertical.setSizes([560, 170])
        layout.addWidget(vertical, 1)

    def show_state(self, signed: bool, generating: bool) -> None:
        """A signed version is read-only (the summary's editors and the code panel); so is a draft the model is
        still writing."""
        for editor in self.summary_pane.editors.values():
            editor.setReadOnly(signed or generating)
        self.icd_panel.setEnabled(not signed)
        self.summary_title.setText(SIGNED_TITLE if signed else STREAMING_TITLE if generating else EDITABLE_TITLE)
