"""What the run is doing, in words: the phases and parts in the progress log, the model's raw output (JSON,
``<tool_call>``) behind 详情 for IT and the curious, and how much the model has written so far."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPlainTextEdit, QSplitter, QVBoxLayout, QWidget

from inference.progress import Progress


class ProgressView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.log = QPlainTextEdit()
        self.log.setObjectName("progress")
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        self.log.setPlaceholderText("生成过程：读取病历、生成摘要、ICD 编码、核对原文，逐步显示")
        self.raw_output = QPlainTextEdit()
        self.raw_output.setObjectName("raw_output")
        self.raw_output.setReadOnly(True)
        self.raw_output.setMaximumBlockCount(4000)
        self.raw_output.setVisible(False)
        self.show_raw = QCheckBox("详情（模型原始输出）")
        self.show_raw.setObjectName("show_raw")
        self.show_raw.toggled.connect(self.raw_output.setVisible)
        self.stream_label = QLabel("")
        self.stream_label.setObjectName("stream_label")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        title = QLabel("生成过程")
        title.setStyleSheet("font-weight:bold; padding:2px;")
        header.addWidget(title)
        header.addWidget(self.stream_label)
        header.addStretch(1)
        header.addWidget(self.show_raw)
        layout.addLayout(header)
        body = QSplitter()
        body.addWidget(self.log)
        body.addWidget(self.raw_output)
        layout.addWidget(body, 1)
        self._streamed_chars = 0
        self._last_step: tuple[str, int] | None = None
        self._last: Progress | None = None  # the latest snapshot, shown on the log's last line

    def clear(self) -> None:
        self.log.clear()
        self.raw_output.clear()
        self.stream_label.setText("")
        self._streamed_chars = 0
        self._last_step = None
        self._last = None

    def step(self, progress: Progress) -> None:
        """A line per phase or part, updated in place with every snapshot (percent, time used, time left)."""
        key = (progress.phase, progress.part)
        if key != self._last_step:
            if self._last is not None:  # the step before is over: no time left to wait for on its line
                self._rewrite_last(replace(self._last, remaining_s=None))
            self._last_step, self._last = key, progress
            self.log.appendPlainText(f"▶ {progress.line()}")
            self.raw_output.appendPlainText(f"\n▶ {progress.line()}\n")
            return
        self._last = progress
        self._rewrite_last(progress)

    def _rewrite_last(self, progress: Progress) -> None:
        cursor = self.log.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.movePosition(cursor.MoveOperation.StartOfBlock, cursor.MoveMode.KeepAnchor)
        cursor.insertText(f"▶ {progress.line()}")

    def last_line(self) -> str:
        return self.log.document().lastBlock().text()

    def tokens(self, chunk: str) -> None:
        """The model's text goes to 详情 only; the log counts it in words."""
        self._streamed_chars += len(chunk)
        self.stream_label.setText(f"模型已输出 {self._streamed_chars} 字")
        cursor = self.raw_output.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(chunk)
        if self.raw_output.isVisible():
            self.raw_output.setTextCursor(cursor)
            self.raw_output.ensureCursorVisible()

    def note(self, text: str) -> None:
        """A line of its own (the end of a run, a stop): the step before it is over."""
        if self._last is not None:
            self._rewrite_last(replace(self._last, remaining_s=None))
        self._last_step = self._last = None
        self.log.appendPlainText(text)
