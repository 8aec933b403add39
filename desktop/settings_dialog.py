"""Settings: the GGUF model, GPU layers, context size, threads. Saved to the per-user config file."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from desktop.wording import chinese
from inference.errors import MedBriefError
from inference.llm.gguf_header import check_loadable, read_gguf_header
from inference.llm.settings import EngineSettings


class SettingsDialog(QDialog):
    def __init__(self, settings: EngineSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("设置")
        form = QFormLayout(self)
        self.model_path = QLineEdit(str(settings.model_path) if settings.model_path else "")
        self.model_path.setPlaceholderText("留空使用内置演示模型（非临床用途）")
        browse = QPushButton("浏览…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model_path)
        row.addWidget(browse)
        holder = QWidget()
        holder.setLayout(row)
        form.addRow("GGUF 模型文件", holder)
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

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "选择 GGUF 模型", str(Path.home()), "GGUF 模型 (*.gguf)")
        if path:
            self.model_path.setText(path)

    def settings(self) -> EngineSettings:
        """The settings as entered, checked by ``EngineSettings`` itself. Raises pydantic's ValidationError."""
        text = self.model_path.text().strip()
        return EngineSettings.model_validate({
            **self._base.model_dump(),
            "model_path": Path(text) if text else None,
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
            if settings.model_path is not None:
                check_loadable(read_gguf_header(settings.model_path), settings.n_ctx)
        except ValidationError as exc:
            self.problem.setText(f"设置无效：{exc.errors()[0]['msg']}")
            return
        except MedBriefError as exc:
            self.problem.setText(f"模型文件不可用：{chinese(exc.message)}")
            return
        super().accept()
