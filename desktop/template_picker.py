"""The template the next summary is written with: a list in the toolbar of the ward's templates (built-in and the
department's, ``inference.templates.catalog``). One that cannot be used stays in the list, greyed, with its reason
as the tooltip, so IT sees why; the others work."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from inference.templates.catalog import TemplateCatalog
from inference.templates.spec import SummaryTemplate


class TemplatePicker(QComboBox):
    chosen = Signal(object)  # the SummaryTemplate the doctor picked

    def __init__(self, catalog: TemplateCatalog | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("template_picker")
        self.setToolTip("摘要模板：下一次生成使用的模板")
        self.catalog = catalog or TemplateCatalog()
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        for entry in self.catalog.entries:
            label = entry.template.name if entry.template is not None else entry.file.name
            self.addItem(label if entry.usable else f"{label}（不可用）", entry.template if entry.usable else None)
            item = model.item(self.count() - 1)
            item.setToolTip(entry.problem or (entry.template.description if entry.template else ""))
            if not entry.usable:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
        self.show_template(self.catalog.get(None))
        self.currentIndexChanged.connect(self._changed)

    @property
    def template(self) -> SummaryTemplate:
        chosen = self.currentData()
        return chosen if isinstance(chosen, SummaryTemplate) else self.catalog.get(None)

    def show_template(self, template: SummaryTemplate) -> None:
        """Point at ``template`` (a record reopened with it) without a new choice; when it is no longer in the list
        (its file changed or went) the list stays as it is: the record keeps its template, the next run uses the
        list's."""
        for index in range(self.count()):
            data = self.itemData(index)
            if isinstance(data, SummaryTemplate) and data == template:
                self.blockSignals(True)
                self.setCurrentIndex(index)
                self.blockSignals(False)
                return

    def _changed(self, _index: int) -> None:
        self.chosen.emit(self.template)
