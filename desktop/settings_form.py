"""A form built from pydantic fields: one editor per field, its label the field's title, its tooltip the
Chinese half of its description, its range the field's constraints, its choices a ``Literal``'s values. A field
that may be unset shows what unset means (自动, 不使用) rather than a number that means it."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path

import annotated_types
from pydantic.fields import FieldInfo
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.wording import chinese

SPIN_LIMIT = 2**31 - 1  # Qt's spin boxes hold a C int


def _extra(field: FieldInfo) -> dict[str, object]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def _bounds(field: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for rule in field.metadata:
        if isinstance(rule, (annotated_types.Ge, annotated_types.Gt)):
            low = float(getattr(rule, "ge", getattr(rule, "gt", 0)))
        elif isinstance(rule, (annotated_types.Le, annotated_types.Lt)):
            high = float(getattr(rule, "le", getattr(rule, "lt", 0)))
    return low, high


class FieldEditor:
    """One field's widget, read back as the value the settings model takes."""

    def __init__(self, name: str, field: FieldInfo, value: object, parent: QWidget) -> None:
        self.name, self.field = name, field
        args = [a for a in typing.get_args(field.annotation) if a is not type(None)]
        self.optional = type(None) in typing.get_args(field.annotation)
        self.kind = "choice" if typing.get_origin(field.annotation) is typing.Literal else (args[0] if args else field.annotation)
        self.unset = str(_extra(field).get("unset", ""))
        self.line = QLineEdit("" if value is None else str(value))  # text and path fields
        self.line.setPlaceholderText(self.unset)
        self.widget: QWidget
        if self.kind == "choice":
            self.widget = self._choice(value)
        elif self.kind is bool:
            self.widget = QCheckBox(field.title or name)
            self.widget.setChecked(bool(value))
        elif self.kind is Path:
            self.widget = self._path(parent)
        elif self.kind is int:
            self.widget = self._number(QSpinBox(), value)
        elif self.kind is float:
            self.widget = self._number(QDoubleSpinBox(), value)
        else:
            self.widget = self.line
        self.widget.setObjectName(name)
        self.widget.setToolTip(chinese(field.description or ""))

    @property
    def label(self) -> str:
        return "" if isinstance(self.widget, QCheckBox) else (self.field.title or self.name)

    def _choice(self, value: object) -> QComboBox:
        labels = _extra(self.field).get("choices", {})
        combo = QComboBox()
        for option in typing.get_args(self.field.annotation):
            combo.addItem(str(labels.get(option, option)) if isinstance(labels, dict) else str(option), option)
        combo.setCurrentIndex(max(0, combo.findData(value)))
        return combo

    def _path(self, parent: QWidget) -> QWidget:
        button = QPushButton("浏览…")
        title = self.field.title or self.name

        def browse() -> None:
            start = self.line.text().strip() or str(Path.home())
            kinds = str(_extra(self.field).get("file_filter", "GGUF 文件 (*.gguf)"))
            path, _ = QFileDialog.getOpenFileName(parent, f"选择{title}", start, kinds)
            if path:
                self.line.setText(path)

        button.clicked.connect(browse)
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.line)
        row.addWidget(button)
        return holder

    def _number(self, spin: QSpinBox | QDoubleSpinBox, value: object) -> QSpinBox | QDoubleSpinBox:
        low, high = _bounds(self.field)
        low = 0.0 if low is None else low
        high = float(SPIN_LIMIT) if high is None else high
        if isinstance(spin, QDoubleSpinBox):
            spin.setDecimals(2)
            spin.setSingleStep(0.05 if high <= 4 else 1.0)
        special = _extra(self.field).get("special")
        if self.optional:  # one below the lowest allowed value reads as unset: 自动
            low -= 1
            spin.setSpecialValueText(self.unset)
        elif special:  # the lowest value means something in words: -1 GPU 层数 is 全部层
            spin.setSpecialValueText(str(special))
        if isinstance(spin, QSpinBox):
            spin.setRange(int(low), int(min(high, SPIN_LIMIT)))
            spin.setValue(int(low) if value is None else int(value))  # type: ignore[call-overload]
        else:
            spin.setRange(low, high)
            spin.setValue(low if value is None else float(value))  # type: ignore[arg-type]
        return spin

    def value(self) -> object:
        widget = self.widget
        if isinstance(widget, QComboBox):
            return widget.currentData()
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            if self.optional and widget.value() == widget.minimum():
                return None
            return widget.value()
        text = self.line.text().strip()
        if not text and self.optional:
            return None
        return Path(text) if self.kind is Path else text

    def on_change(self, slot: Callable[[], object]) -> None:
        widget = self.widget
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.valueChanged.connect(slot)
        elif isinstance(widget, QCheckBox):
            widget.toggled.connect(slot)
        elif isinstance(widget, QComboBox):
            widget.currentIndexChanged.connect(slot)
        else:
            self.line.textChanged.connect(slot)

    def set_text(self, text: str) -> None:
        self.line.setText(text)

    def text(self) -> str:
        return self.line.text().strip()
