"""Settings: every engine setting, in the three groups ``EngineSettings`` declares (模型与设备, 生成, 科室模型服务器),
each field's editor, range, choices and tooltip taken from the field itself; the model and a LoRA adapter can
also be chosen from the models folder's list, with whether each fits the GPU; the server's tab checks the server
as the ward PC will connect (检查服务器, off the GUI thread). Saved to the per-user config file."""

from __future__ import annotations

from pydantic import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.background import Background
from desktop.settings_form import FieldEditor
from desktop.wording import chinese
from inference.errors import MedBriefError
from inference.llm.demo_model import require_demo_model
from inference.llm.gguf_header import check_loadable, read_gguf_header
from inference.llm.gpu_memory import gib, gpu_devices
from inference.llm.lora import check_adapter
from inference.llm.model_catalog import CatalogEntry, folder_model, scan
from inference.llm.settings import SETTINGS_GROUPS, EngineSettings
from inference.paths import models_dir
from inference.server_check import ServerCheck, check_server

CATALOG_COLUMNS = ("文件", "大小", "架构", "量化", "本机能否运行")
# Settings whose change changes whether a model fits: the models list is estimated again.
_FIT_FIELDS = ("n_ctx", "n_gpu_layers", "flash_attn", "kv_cache_type", "n_ubatch")


class SettingsDialog(QDialog):
    def __init__(self, settings: EngineSettings, parent: QWidget | None = None,
                 background: Background | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("设置")
        self.setMinimumWidth(720)
        layout = QVBoxLayout(self)
        tabs = QTabWidget()
        layout.addWidget(tabs)
        self.editors: dict[str, FieldEditor] = {}
        for title, group in SETTINGS_GROUPS:
            page = QWidget()
            form = QFormLayout(page)
            if group is SETTINGS_GROUPS[0][1]:
                self._add_catalog(form)
            for name, field in group.model_fields.items():
                editor = FieldEditor(name, field, getattr(settings, name), self)
                self.editors[name] = editor
                form.addRow(editor.label, editor.widget)
            if group is SETTINGS_GROUPS[-1][1]:
                self._add_server_check(form)
            tabs.addTab(page, title)
        self.problem = QLabel("")  # why OK is refused: a setting the engine's validators reject
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._base = settings
        self._filling = False
        # Headers, a hash of the demo model and nvidia-smi: off the GUI thread, again when a setting that
        # decides the fit changes.
        self.background = background or Background(self)
        for name in _FIT_FIELDS:
            self.editors[name].on_change(self.refresh_catalog)
        self.refresh_catalog()

    def field(self, name: str) -> QWidget:
        """The editor of one setting (tests and the catalog fill them in)."""
        return self.editors[name].widget

    def _add_catalog(self, form: QFormLayout) -> None:
        self.catalog = QTableWidget(0, len(CATALOG_COLUMNS))
        self.catalog.setHorizontalHeaderLabels(CATALOG_COLUMNS)
        self.catalog.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.catalog.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.catalog.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.catalog.horizontalHeader().setStretchLastSection(True)
        self.catalog.setMinimumHeight(140)
        self.catalog.itemSelectionChanged.connect(self._pick_from_catalog)
        self.entries: list[CatalogEntry] = []
        form.addRow(QLabel(f"模型文件夹（{models_dir()}）：选中一行即选用"))
        form.addRow(self.catalog)

    def _add_server_check(self, form: QFormLayout) -> None:
        self.check_button = QPushButton("检查服务器")
        self.check_button.setToolTip("按上面的设置连接服务器：模型、每次请求的上下文、病历分段、输出约束（几秒）")
        self.check_button.clicked.connect(self.check_server)
        self.server_report = QLabel("")
        self.server_report.setWordWrap(True)
        self.server_report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.check_button)
        form.addRow(self.server_report)

    def check_server(self) -> None:
        """What ``medbrief server check --no-sample`` reads, for the settings as entered; the answer (or the one
        line why the server cannot be used) replaces the report when it arrives."""
        try:
            settings = self.settings().model_copy(update={"backend": "server"})
        except ValidationError as exc:
            self._show_server_problem(f"设置无效：{exc.errors()[0]['msg']}")
            return
        if not settings.server_url:
            self._show_server_problem("请先填写服务器地址")
            return
        self.check_button.setEnabled(False)
        self.server_report.setStyleSheet("")
        self.server_report.setText("正在连接服务器…")
        self.background.run("server-check", lambda: check_server(settings), self._show_server_check,
                            lambda exc: self._show_server_problem(chinese(getattr(exc, "message", str(exc)))))

    def _show_server_check(self, check: ServerCheck) -> None:
        self.check_button.setEnabled(True)
        problem = [f"不可用：{chinese(check.problem)}"] if check.problem else []
        self.server_report.setStyleSheet("color: #b00020" if problem else "")
        self.server_report.setText("\n".join([*check.lines(), *problem]))

    def _show_server_problem(self, message: str) -> None:
        self.check_button.setEnabled(True)
        self.server_report.setStyleSheet("color: #b00020")
        self.server_report.setText(f"不可用：{message}")

    def refresh_catalog(self) -> None:
        try:
            settings = self.settings()
        except ValidationError:
            return
        self.background.run("catalog", lambda: scan(settings, gpu_devices()), self._show_catalog,
                            lambda exc: self.problem.setText(f"模型文件夹无法读取：{exc}"))

    def _show_catalog(self, entries: list[CatalogEntry]) -> None:
        self._filling = True
        self.entries = entries
        self.catalog.setRowCount(len(entries))
        chosen = {self.editors["model_path"].text(), self.editors["lora_path"].text()}
        for row, entry in enumerate(entries):
            name = entry.path.name + ("（演示模型）" if entry.demo else "")
            cells = (name, gib(entry.size), entry.kind_label, entry.quantization, chinese(entry.verdict))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(entry.path) if column == 0 else text)
                if entry.fits is False or entry.kind == "unusable":
                    item.setForeground(Qt.GlobalColor.darkRed)
                self.catalog.setItem(row, column, item)
            if str(entry.path) in chosen:
                self.catalog.selectRow(row)
        self.catalog.resizeColumnsToContents()
        self._filling = False

    def _pick_from_catalog(self) -> None:
        rows = self.catalog.selectionModel().selectedRows()
        if self._filling or not rows:
            return
        entry = self.entries[rows[0].row()]
        if entry.kind == "model":
            self.editors["model_path"].set_text(str(entry.path))
        elif entry.kind == "adapter":
            self.editors["lora_path"].set_text(str(entry.path))
        else:
            self.problem.setText(f"该文件不可用：{chinese(entry.problem)}")

    def settings(self) -> EngineSettings:
        """The settings as entered, checked by ``EngineSettings`` itself. Raises pydantic's ValidationError."""
        return EngineSettings.model_validate({**self._base.model_dump(),
                                              **{name: editor.value() for name, editor in self.editors.items()}})

    def accept(self) -> None:
        """Nothing is saved, and the loaded model stays, until the settings and the model file check out:
        the GGUF header is read here (milliseconds), before the window reloads anything."""
        try:
            settings = self.settings()
        except ValidationError as exc:
            self.problem.setText(f"设置无效：{exc.errors()[0]['msg']}")
            return
        what = "模型文件不可用"
        try:
            if settings.backend == "server":
                from inference.llm.server import check_server_url

                what = "服务器设置不可用"
                check_server_url(settings.server_url or "", settings.server_allow_http)
            else:
                model = settings.model_path
                if model is None and settings.lora_path is not None:
                    model = folder_model() or require_demo_model()  # what an empty model field loads
                if model is not None:
                    base = read_gguf_header(model)
                    check_loadable(base, settings.n_ctx)
                    if settings.lora_path is not None:
                        what = "LoRA 适配器不可用"
                        check_adapter(settings.lora_path, base)
        except MedBriefError as exc:
            self.problem.setText(f"{what}：{chinese(exc.message)}")
            return
        super().accept()

