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


def _fits(table: QTableWidget, row: int, column: int) -> bool:
    """The cell shows its whole text: wrapped within the column, within the row's height."""
    from PySide6.QtCore import Qt

    item = table.item(row, column)
    width = table.columnWidth(column) - 8  # the cell's margins
    needed = table.fontMetrics().boundingRect(QRect(0, 0, max(width, 1), 10_000), Qt.TextFlag.TextWordWrap,
                                              item.text())
    return needed.width() <= width and needed.height() <= table.rowHeight(row)


def test_at_1366x768_with_the_history_open_every_code_name_reads_whole(qtbot, make_window, tmp_path) -> None:  # noqa: F811
    from PySide6.QtWidgets import QApplication

    from desktop.app import pick_cjk_font
    from desktop.history_controller import HistoryController
    from inference.history.store import HistoryStore

    app = QApplication.instance()
    font = app.font()
    pick_cjk_font(app)  # the font the app draws with (the default offscreen font measures CJK narrower)
    window = make_window()
    store = HistoryStore.open(tmp_path / "history.sqlite")
    controller = HistoryController(window, store)
    window.resize(1366, 768)
    window.show()
    controller.dock.show()
    qtbot.waitExposed(window)
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    _generate(qtbot, window)
    qtbot.wait(50)
    rows = window.icd_panel.rows
    assert rows.rowCount() == 3
    assert sum(rows.columnWidth(c) for c in range(rows.columnCount())) <= rows.viewport().width()  # no column cut off
    for row in range(rows.rowCount()):
        for column in range(rows.columnCount()):
            assert _fits(rows, row, column), (row, column, rows.item(row, column).text(), rows.columnWidth(column))
    assert window.icd_panel.details.text().startswith("来源：")
    store.close()
    app.setFont(font)


def test_the_audit_log_shows_the_signer_and_the_reason_without_widening(qtbot, tmp_path) -> None:
    from PySide6.QtWidgets import QDialog

    from desktop.background import Background
    from desktop.history_panel import HistoryPanel
    from inference.history.store import HistoryStore
    from tests.history_helpers import sample_report

    store = HistoryStore.open(tmp_path / "history.sqlite")
    document_id = store.record_run(sample_report().run_record(), {}).document_id
    store.set_status(document_id, "signed", signer="张医生", override="已电话核实肌酐，与检验科确认为 138",
                     overridden=("核对发现 1 处错误尚未处理：数值在原文中找不到（编造或改动）：肌酐 183 μmol/L",))
    holder = QWidget()
    qtbot.addWidget(holder)
    panel = HistoryPanel(store, lambda _q: False, Background(holder), holder)
    panel.show_audit()
    dialog = panel.findChildren(QDialog)[-1]
    audit = dialog.findChild(QTableWidget, "audit_rows")
    qtbot.waitExposed(dialog)
    row = next(r for r in range(audit.rowCount()) if audit.item(r, 2).text() == "状态变更")
    assert "张医生" in audit.item(row, 4).text() and "肌酐 183" in audit.item(row, 4).text()
    for column in range(audit.columnCount()):
        assert _fits(audit, row, column), (column, audit.item(row, column).text())
    dialog.close()
    store.close()
