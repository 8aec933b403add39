"""The window at the common ward-PC screen (1366×768) and at 1920×1080, rendered offscreen: no two visible
widgets overlap, every section label sits above its box, and the lists show more than a few rows."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import (
    QAbstractButton,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QTableWidget,
    QWidget,
)

from desktop.main_window import MainWindow
from tests.conftest import SAMPLE_RECORD
from tests.test_desktop import _generate, _ready, make_window  # noqa: F401  (fixture)

LEAVES = (QLabel, QPlainTextEdit, QListWidget, QTableWidget, QAbstractButton, QLineEdit)


def _on_screen(widget: QWidget, window: MainWindow) -> QRect:
    """Where the widget is drawn in the window, clipped by every parent (a pane that scrolls shows part)."""
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    for parent in _parents(widget, window):
        rect = rect.intersected(QRect(parent.mapTo(window, QPoint(0, 0)), parent.size()))
    return rect


def _leaves(window: MainWindow) -> list[QWidget]:
    found = []
    for widget in window.centralWidget().findChildren(QWidget):
        if isinstance(widget, LEAVES) and widget.isVisibleTo(window) and widget.width() > 0 and widget.height() > 0:
            if not any(isinstance(parent, LEAVES) for parent in _parents(widget, window)):  # parts of a list, a table
                found.append(widget)
    return found


def _parents(widget: QWidget, window: MainWindow) -> list[QWidget]:
    chain, parent = [], widget.parentWidget()
    while parent is not None and parent is not window:
        chain.append(parent)
        parent = parent.parentWidget()
    return chain


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_nothing_overlaps_and_each_label_sits_above_its_box(qtbot, make_window, size: tuple[int, int]) -> None:  # noqa: F811
    window = make_window()
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    qtbot.wait(50)
    leaves = _leaves(window)
    overlapping = [
        (a.objectName() or type(a).__name__, b.objectName() or type(b).__name__)
        for i, a in enumerate(leaves) for b in leaves[i + 1:]
        if _on_screen(a, window).intersected(_on_screen(b, window)).isValid()
    ]
    assert overlapping == []
    pane = window.summary_pane
    for name, editor in pane.editors.items():
        label = pane.findChild(QLabel, f"heading_{name}")
        assert _on_screen(label, window).bottom() < _on_screen(editor, window).top(), name
    rows = window.icd_panel.rows
    assert rows.rowCount() == 3 and all(
        rows.visualItemRect(rows.item(row, 0)).bottom() <= rows.viewport().height() for row in range(3))
    assert pane.findings_list.height() >= 6 * pane.findings_list.fontMetrics().height()
