"""The status bar's permanent part: the model, the DEMO badge, where the layers run, and — behind 技术详情, for
IT — context use and speed; a progress bar while a run goes on."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QLabel, QProgressBar, QStatusBar

from inference.llm.engine import EngineInfo, Timings


class EngineStatus:
    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.info: EngineInfo | None = None
        self.model_label = QLabel("模型：加载中…")
        self.demo_badge = QLabel(" DEMO ")
        self.demo_badge.setObjectName("demo_badge")
        self.demo_badge.setStyleSheet("background:#c62828; color:white; font-weight:bold; border-radius:3px;")
        self.demo_badge.setVisible(False)
        self.placement_label = QLabel("")
        self.context_label = QLabel("")
        self.speed_label = QLabel("")
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progress_bar")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(False)
        self.progress_bar.setVisible(False)
        bar.addWidget(self.progress_bar)
        # Context use, tokens/s and where the layers run are for IT: shown when 技术详情 is ticked (the
        # placement also whenever it carries a warning the doctor should know, such as no GPU found).
        self.tech_details = QCheckBox("技术详情")
        self.tech_details.setObjectName("tech_details")
        self.tech_details.toggled.connect(self._show_tech_details)
        for widget in (self.model_label, self.demo_badge, self.placement_label, self.context_label, self.speed_label,
                       self.tech_details):
            bar.addPermanentWidget(widget)
        self._show_tech_details(False)

    def _show_tech_details(self, shown: bool) -> None:
        self.context_label.setVisible(shown)
        self.speed_label.setVisible(shown)
        self.placement_label.setVisible(shown or bool(self.info and self.info.warning))

    def loading(self) -> None:
        self.info = None
        self.model_label.setText("模型：加载中…")

    def failed(self) -> None:
        self.model_label.setText("模型：未加载")

    def loaded(self, info: EngineInfo) -> None:
        self.info = info
        adapter = f" + LoRA {info.adapter}" if info.lora else ""
        self.model_label.setText(f"模型：{Path(info.model_path).name}（{info.quantization}）{adapter}")
        self.demo_badge.setVisible(info.is_demo)
        self.placement_label.setText(f"运行于：{info.placement}" + (" ⚠" if info.warning else ""))
        self.placement_label.setToolTip(info.warning)
        self.placement_label.setStyleSheet("color:#b26a00; font-weight:bold;" if info.warning else "")
        self.context_label.setText(f"上下文：0 / {info.n_ctx}")
        self._show_tech_details(self.tech_details.isChecked())
        if info.warning:
            self.bar.showMessage(f"模型已加载，但{info.warning.split(' / ')[0]}", 15000)
        else:
            self.bar.showMessage(f"模型已加载（{info.load_s:.1f} 秒）", 5000)

    def ran(self, timings: Timings) -> None:
        if self.info is not None:
            self.context_label.setText(f"上下文：{timings.prompt_tokens + timings.completion_tokens} / {self.info.n_ctx}")
        self.speed_label.setText(f"{timings.tokens_per_s:.1f} token/s · 首字 {timings.ttft_s:.1f}s")

    def generating(self, running: bool) -> None:
        self.progress_bar.setVisible(running)
        if not running:
            self.progress_bar.reset()

    def fraction(self, done: float) -> None:
        self.progress_bar.setValue(round(done * 1000))
