"""The ICD panel: one row per diagnosis with the chosen code, the candidates the function calls produced,
accept or replace, and a search box over the active code table."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.background import Background
from inference.icd.coding import (
    MANUAL,
    PROVENANCE_LABELS,
    IcdAssignment,
    direct_assignment,
    match_label,
    to_final_codes,
)
from inference.icd.lookup import Candidate, matcher_for
from inference.icd.precision import is_leaf
from inference.icd.table import BUNDLED_TABLE, IcdTable
from inference.record.patient import Patient

# Three columns that fit a third of 1366 px with the history dock open: the code and its name share one, wrapped
# rather than cut. Where the code came from and how sure the lookup was are under the table, for the selected row.
COLUMNS = ["诊断", "编码与名称", "状态"]
CODE_COLUMN, STATUS_COLUMN = 1, 2
CELL_PADDING = 16  # the style's margins on both sides of a cell's text, with room to spare


def precision_text(assignment: IcdAssignment) -> str:
    if not assignment.precision:
        return ""
    start = f"查询所得 {assignment.refined_from}；" if assignment.refined_from else ""
    return f"编码依据：{start}{assignment.precision}"


def _as_looked_up(assignment: IcdAssignment, table: IcdTable) -> IcdAssignment:
    """The assignment with the code the lookup or the model chose, before the rules took it further; a code
    the doctor chose or confirmed stays as it is."""
    if assignment.provenance == MANUAL or assignment.confirmed or not assignment.refined_from:
        return assignment
    entry = table.get(assignment.refined_from)
    return replace(assignment, code=assignment.refined_from, name=entry.name if entry else assignment.name,
                   refined_from=None, precision="")


def source_text(assignment: IcdAssignment) -> str:
    """Where the row's code came from and how sure the lookup was; a note (a string of several conditions, a
    code the model gave that was refused) on its own line."""
    source = (f"来源：{PROVENANCE_LABELS.get(assignment.provenance, assignment.provenance)}"
              f" · 置信度 {assignment.score:.2f}")
    note = assignment.note.split(" / ")[0]  # the Chinese half of a bilingual note
    return f"{source}\n{note}" if note else source


class IcdPanel(QWidget):
    changed = Signal()  # a code was accepted or replaced

    searched = Signal()  # search results shown (they are found off the GUI thread)

    def __init__(self, background: Background, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.background = background
        self.table: IcdTable | None = None
        self.patient: Patient | None = None  # the open record's sex and age: codes they rule out are not looked up
        self.assignments: list[IcdAssignment] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.title = QLabel("ICD-10 编码")
        layout.addWidget(self.title)
        self.rows = QTableWidget(0, len(COLUMNS))
        self.rows.setObjectName("icd_rows")
        self.rows.setHorizontalHeaderLabels(COLUMNS)
        self.rows.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rows.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.rows.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.rows.horizontalHeader()
        for column in range(len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch if column == CODE_COLUMN
                                        else QHeaderView.ResizeMode.Interactive)
        self.rows.setWordWrap(True)
        self.rows.viewport().installEventFilter(self)  # a narrower table: the names wrap onto more lines
        self.rows.itemSelectionChanged.connect(self._row_selected)
        self.rows.verticalHeader().setVisible(False)
        # A record's diagnoses at a glance: room for five rows however small the window (the pane scrolls).
        self.rows.setMinimumHeight(self.rows.horizontalHeader().sizeHint().height()
                                   + 5 * self.rows.verticalHeader().defaultSectionSize() + 4)
        layout.addWidget(self.rows, 3)
        self.details = QLabel("")
        self.details.setObjectName("icd_details")
        self.details.setWordWrap(True)
        layout.addWidget(self.details)
        # Why the final code is more precise than the one looked up: 「同时诊断心力衰竭 → I11.0」.
        self.precision = QLabel("")
        self.precision.setObjectName("icd_precision")
        self.precision.setWordWrap(True)
        layout.addWidget(self.precision)
        layout.addWidget(QLabel("候选编码（函数调用结果）"))
        self.candidates = QListWidget()
        self.candidates.setObjectName("icd_candidates")
        self.candidates.setWordWrap(True)  # a candidate's name and why it was proposed, whole
        layout.addWidget(self.candidates, 2)
        buttons = QHBoxLayout()
        self.accept_button = QPushButton("采用选中编码")
        self.accept_button.clicked.connect(self.accept_selected_candidate)
        buttons.addWidget(self.accept_button)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("检索编码表"))
        self.search_box = QLineEdit()
        self.search_box.setObjectName("icd_search")
        self.search_box.setPlaceholderText("输入疾病名称或编码，回车检索")
        self.search_box.returnPressed.connect(self.search)
        layout.addWidget(self.search_box)
        self.search_results = QListWidget()
        self.search_results.setObjectName("icd_search_results")
        layout.addWidget(self.search_results, 2)
        self.replace_button = QPushButton("替换为检索结果")
        self.replace_button.clicked.connect(self.replace_with_search_result)
        layout.addWidget(self.replace_button)

    def set_table(self, table: IcdTable) -> None:
        self.table = table
        shown = "内置 WHO ICD-10 中文版" if table.info.name == BUNDLED_TABLE else table.info.name
        self.title.setText(f"ICD-10 编码（{shown}）")
        self.title.setToolTip(f"{table.info.name}：{table.info.version}，{table.info.rows} 条，sha256 {table.info.sha256[:12]}")

    def set_assignments(self, assignments: list[IcdAssignment]) -> None:
        self.assignments = list(assignments)
        self._refresh_rows()
        if self.assignments:
            self.rows.selectRow(0)

    def _refresh_rows(self) -> None:
        self.rows.setRowCount(len(self.assignments))
        for row, assignment in enumerate(self.assignments):
            coded = f"{assignment.code} {assignment.name}" if assignment.code else "未找到编码"
            values = [assignment.diagnosis, coded, self._state(assignment)]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if column == 0 and assignment.note:
                    item.setToolTip(assignment.note)
                if column == CODE_COLUMN and assignment.precision:
                    item.setToolTip(precision_text(assignment))
                if column == STATUS_COLUMN:
                    item.setToolTip(source_text(assignment))
                self.rows.setItem(row, column, item)
        metrics = self.rows.fontMetrics()
        for column, most in ((0, 6 * metrics.horizontalAdvance("诊")), (STATUS_COLUMN, None)):
            texts = [COLUMNS[column], *(self.rows.item(row, column).text() for row in range(self.rows.rowCount()))]
            width = max(metrics.horizontalAdvance(text) for text in texts) + CELL_PADDING
            self.rows.setColumnWidth(column, min(width, most) if most else width)  # a state never wraps
        self.rows.resizeRowsToContents()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.rows.viewport() and event.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self.rows.resizeRowsToContents)
        return super().eventFilter(watched, event)

    def _state(self, assignment: IcdAssignment) -> str:
        """A category with subcategories is not a code a coder accepts, confirmed or not."""
        if assignment.code and self.table is not None and assignment.code in self.table \
                and not is_leaf(assignment.code, self.table):
            return "须选末级"
        return "已确认" if assignment.confirmed else "待确认"

    def selected_row(self) -> int:
        rows = self.rows.selectionModel().selectedRows() if self.rows.selectionModel() else []
        return rows[0].row() if rows else -1

    def confirmed_rows(self) -> set[int]:
        return {row for row, a in enumerate(self.assignments) if a.confirmed}

    def _row_selected(self) -> None:
        row = self.selected_row()
        _fill(self.candidates, self.assignments[row].candidates if row >= 0 else [], with_reason=True)
        self.precision.setText(precision_text(self.assignments[row]) if row >= 0 else "")
        self.details.setText(source_text(self.assignments[row]) if row >= 0 else "")

    def accept_selected_candidate(self) -> None:
        """The doctor confirms a candidate (the chosen one or another from the list)."""
        item = self.candidates.currentItem()
        if item is not None:
            self._choose(item.data(Qt.ItemDataRole.UserRole))

    def search(self) -> None:
        query, table = self.search_box.text().strip(), self.table

        def find() -> list[Candidate]:
            if not query or table is None:
                return []
            entry = table.get(query)
            return ([Candidate(entry.code, entry.name, 1.0, "code")] if entry else []) + matcher_for(table).lookup(
                query, top_k=10)

        def show(found: list[Candidate]) -> None:
            _fill(self.search_results, found, with_reason=False)
            self.searched.emit()

        self.background.run("icd_search", find, show)

    def replace_with_search_result(self) -> None:
        item = self.search_results.currentItem()
        if item is not None and self.table is not None and item.data(Qt.ItemDataRole.UserRole).code in self.table:
            self._choose(item.data(Qt.ItemDataRole.UserRole))

    def _choose(self, candidate: Candidate) -> None:
        """Record the doctor's code for the selected row; the candidate joins the row's list if new."""
        row = self.selected_row()
        if row < 0:
            return
        current = self.assignments[row]
        if candidate.code != current.code:
            known = any(c.code == candidate.code for c in current.candidates)
            self.assignments[row] = replace(
                current, code=candidate.code, name=candidate.name, score=candidate.score, provenance=MANUAL,
                candidates=current.candidates if known else [candidate, *current.candidates], confirmed=True)
        else:
            self.assignments[row] = replace(current, confirmed=True)
        if self.table is not None:  # the other rows' combination codes may depend on this one
            self.assignments = to_final_codes([_as_looked_up(a, self.table) for a in self.assignments], self.table)
        self._refresh_rows()
        self.rows.selectRow(row)
        self.changed.emit()

    def sync_diagnoses(self, diagnoses: list[str]) -> None:
        """After the doctor edits the diagnosis list: keep coded rows, look up new ones directly (off the GUI
        thread)."""
        if self.table is None or diagnoses == [a.diagnosis for a in self.assignments]:
            return
        table, known, patient = self.table, {a.diagnosis for a in self.assignments}, self.patient
        new = [name for name in dict.fromkeys(diagnoses) if name not in known]
        self.background.run(
            "icd_sync", lambda: {name: direct_assignment(name, table, "医生修改诊断后直接查询", patient=patient)
                                 for name in new},
            lambda found: self._apply_diagnoses(diagnoses, found))

    def _apply_diagnoses(self, diagnoses: list[str], found: dict[str, IcdAssignment]) -> None:
        kept = {a.diagnosis: a for a in self.assignments}
        updated = [kept.get(name) or found.get(name) for name in diagnoses]
        if any(a is None for a in updated):
            return  # the rows changed while looking up; the newer sync brings them
        if [a.diagnosis for a in updated] != [a.diagnosis for a in self.assignments]:
            # The other diagnoses changed, so may the combination codes (I11.0 once heart failure is removed).
            self.assignments = to_final_codes([_as_looked_up(a, self.table) for a in updated], self.table)
            self._refresh_rows()
            self._row_selected()


def _fill(widget: QListWidget, candidates: list[Candidate], with_reason: bool) -> None:
    widget.clear()
    for candidate in candidates:
        reason = f"，{match_label(candidate.match)}" if with_reason else ""
        item = QListWidgetItem(f"{candidate.code}  {candidate.name}  （置信度 {candidate.score:.2f}{reason}）")
        item.setToolTip(candidate.match)
        item.setData(Qt.ItemDataRole.UserRole, candidate)
        widget.addItem(item)
    if widget.count():
        widget.setCurrentRow(0)
