"""Settings: the GGUF model (chosen from the models folder, with whether each fits the GPU, or any file),
a LoRA adapter and its scale, GPU layers, context size, threads. Saved to the per-user config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from desktop.background import Background
from desktop.wording import chinese
from inference.errors import MedBriefError
from inference.llm.demo_model import require_demo_model
from inference.llm.gguf_header import check_loadable, read_gguf_header
from inference.llm.gpu_memory import gpu_devices
from inference.llm.lora import check_adapter
from inference.llm.model_catalog import CatalogEntry, folder_model, scan
from inference.llm.settings import EngineSettings
from inference.paths import models_dir

CATALOG_COLUMNS = ("文件", "大小", "架构", "量化", "本机能否运行")


class SettingsDialog(QDialog):
    def __init__(self, settings: EngineSettings, parent: QWidget | None = None,
                 background: Background | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("设置")
        self.setMinimumWidth(720)
        form = QFormLayout(self)
        self.backend = QComboBox()
        self.backend.addItem("本机模型（内嵌）", "embedded")
        self.backend.addItem("科室模型服务器（OpenAI 兼容）", "server")
        self.backend.setCurrentIndex(self.backend.findData(settings.backend))
        form.addRow("运行方式", self.backend)
        self.server_url = QLineEdit(settings.server_url or "")
        self.server_url.setPlaceholderText("https://llm.hospital.local:8000（明文 http 仅限本机）")
        form.addRow("服务器地址", self.server_url)
        self.server_model = QLineEdit(settings.server_model or "")
        self.server_model.setPlaceholderText("留空：服务器提供的模型；填写后不符即拒绝")
        form.addRow("服务器模型", self.server_model)
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
        self.model_path = QLineEdit(str(settings.model_path) if settings.model_path else "")
        self.model_path.setPlaceholderText("留空：模型文件夹中唯一的模型，否则内置演示模型（非临床用途）")
        form.addRow("GGUF 模型文件", self._with_browse(self.model_path, self._browse))
        self.lora_path = QLineEdit(str(settings.lora_path) if settings.lora_path else "")
        self.lora_path.setPlaceholderText("留空：不使用 LoRA 适配器")
        form.addRow("LoRA 适配器", self._with_browse(self.lora_path, self._browse_lora))
        self.lora_scale = QDoubleSpinBox()
        self.lora_scale.setRange(0.0, 4.0)
        self.lora_scale.setSingleStep(0.1)
        self.lora_scale.setValue(settings.lora_scale)
        self.lora_scale.setToolTip("0 = 不起作用；1 = 按训练时的强度")
        form.addRow("LoRA 强度", self.lora_scale)
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setValue(settings.n_gpu_layers)
        self.gpu_layers.setToolTip("-1 = 全部层放到 GPU；0 = 只用 CPU")
        form.addRow("GPU 层数", self.gpu_layers)
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(512, 262144)
        self.n_ctx.setSingleStep(1024)
        self.n_ctx.setValue(settings.n_ctx)
        form.addRow("上下文长度（token）", self.n_ctx)
        self.threads = QSpinBox()
        self.threads.setRange(0, 256)
        self.threads.setValue(settings.n_threads or 0)
        self.threads.setToolTip("0 = 自动")
        form.addRow("CPU 线程数", self.threads)
        self.flash_attn = QCheckBox("启用 Flash Attention")
        self.flash_attn.setChecked(settings.flash_attn)
        form.addRow("", self.flash_attn)
        self.problem = QLabel("")  # why OK is refused: a setting the engine's validators reject
        self.problem.setStyleSheet("color: #b00020")
        self.problem.setWordWrap(True)
        form.addRow(self.problem)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self._base = settings
        self._filling = False
        # Headers, a hash of the demo model and nvidia-smi: off the GUI thread, again when the context changes.
        self.background = background or Background(self)
        for control in (self.n_ctx, self.gpu_layers):
            control.valueChanged.connect(self.refresh_catalog)
        self.flash_attn.toggled.connect(self.refresh_catalog)
        self.refresh_catalog()

    @staticmethod
    def _with_browse(field: QLineEdit, browse: object) -> QWidget:
        button = QPushButton("浏览…")
        button.clicked.connect(browse)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(field)
        row.addWidget(button)
        holder = QWidget()
        holder.setLayout(row)
        return holder

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
        chosen = {self.model_path.text().strip(), self.lora_path.text().strip()}
        for row, entry in enumerate(entries):
            kind = {"adapter": "LoRA", "unusable": "不可用"}.get(entry.kind, entry.architecture)
            name = entry.path.name + ("（演示模型）" if entry.demo else "")
            cells = (name, f"{entry.size / 2**30:.1f} GB", kind, entry.quantization, chinese(entry.verdict))
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
            self.model_path.setText(str(entry.path))
        elif entry.kind == "adapter":
            self.lora_path.setText(str(entry.path))
        else:
            self.problem.setText(f"该文件不可用：{chinese(entry.problem)}")

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "选择 GGUF 模型", str(Path.home()), "GGUF 模型 (*.gguf)")
        if path:
            self.model_path.setText(path)

    def _browse_lora(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "选择 LoRA 适配器", str(models_dir()), "GGUF 适配器 (*.gguf)")
        if path:
            self.lora_path.setText(path)

    def settings(self) -> EngineSettings:
        """The settings as entered, checked by ``EngineSettings`` itself. Raises pydantic's ValidationError."""
        text, lora = self.model_path.text().strip(), self.lora_path.text().strip()
        return EngineSettings.model_validate({
            **self._base.model_dump(),
            "backend": self.backend.currentData(),
            "server_url": self.server_url.text().strip() or None,
            "server_model": self.server_model.text().strip() or None,
            "model_path": Path(text) if text else None,
            "lora_path": Path(lora) if lora else None,
            "lora_scale": self.lora_scale.value(),
            "n_gpu_layers": self.gpu_layers.value(),
            "n_ctx": self.n_ctx.value(),
            "n_threads": self.threads.value() or None,
            "flash_attn": self.flash_attn.isChecked(),
        })

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
