"""The order of a patient's files made one record: shown before they are read, changed by dragging a row or with
上移 / 下移, confirmed with 合并打开. The record's headings follow this order (【本院病历.pdf】 then 【外院CT报告.jpg】)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class FileOrderDialog(QDialog):
    def __init__(self, paths: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("file_order")
        self.setWindowTitle("合并为一份病历")
        self.files = QListWidget()
        self.files.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        for path in paths:
            item = QListWidgetItem(Path(path).name)
            item.setData(Qt.ItemDataRole.UserRole, path)
            item.setToolTip(path)
            self.files.addItem(item)
        self.files.setCurrentRow(0)
        up, down = QPushButton("上移"), QPushButton("下移")
        up.clicked.connect(lambda: self.move(-1))
        down.clicked.connect(lambda: self.move(1))
        buttons = QDialogButtonBox()
        buttons.addButton("合并打开", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton("取消", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        side = QVBoxLayout()
        side.addWidget(up)
        side.addWidget(down)
        side.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.files, 1)
        row.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"{len(paths)} 个文件将按以下顺序合并为一份病历，每个文件一个标题；拖动或用上移、下移调整顺序："))
        layout.addLayout(row)
        layout.addWidget(buttons)

    def move(self, step: int) -> None:
        row = self.files.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.files.count():
            return
        self.files.insertItem(target, self.files.takeItem(row))
        self.files.setCurrentRow(target)

    def ordered(self) -> list[str]:
        return [self.files.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.files.count())]


def ask_file_order(parent: QWidget, paths: list[str]) -> list[str]:
    """The files in the order the doctor confirms; empty when cancelled."""
    dialog = FileOrderDialog(paths, parent)
    return dialog.ordered() if dialog.exec() else []
