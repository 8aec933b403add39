"""Copy and export of the summary on screen: the EMR text to the clipboard, a file in txt, Markdown, JSON or
FHIR. A refused draft is never copied or exported; a demo-model draft carries its mark in every form; a file
says what the version is — draft, reviewed or signed, by whom and when, and what the doctor signed over."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QGuiApplication

from desktop.file_dialogs import ask_path
from inference.export import export, to_text
from inference.paths import write_private

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

EXPORT_FILTERS = {"txt": "病历文本 (*.txt)", "md": "Markdown (*.md)", "json": "JSON (*.json)",
                  "fhir": "FHIR R4 Bundle (*.fhir.json)"}


class SummaryExport:
    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def _refused(self, what: str) -> bool:
        record = self.window.record
        refused = record is not None and not record.can_copy
        if refused:
            self.window.show_error(f"不能{what}", f"该草稿未通过核对（与原文不符），不能{what}。请分段重新生成。")
        return refused

    def _demo(self) -> bool:
        return self.window.record is not None and self.window.record.demo_draft

    def copy(self) -> str:
        if self._refused("复制"):
            return ""
        summary = self.window.current_summary()
        if summary is None:
            return ""
        text = to_text(summary, demo=self._demo())
        QGuiApplication.clipboard().setText(text)
        self.window.statusBar().showMessage("已复制（演示模型草稿，已标注不可用于临床）" if self._demo()
                                            else "已复制，可粘贴到电子病历", 5000)
        return text

    def choose(self) -> None:
        record = self.window.record
        stem = Path(record.document.file_name).stem if record is not None else ""
        chosen = ask_path(self.window, "导出摘要", "save", list(EXPORT_FILTERS.values()), f"摘要-{stem or '病历'}.txt")
        if chosen is not None:
            path, name_filter = chosen
            self.to_file(path, next((k for k, v in EXPORT_FILTERS.items() if v == name_filter), "txt"))

    def to_file(self, path: Path, fmt: str) -> bool:
        if self._refused("导出"):
            return False
        summary, record = self.window.current_summary(), self.window.record
        if summary is None or record is None:
            return False
        try:
            write_private(path, export(record.exported(summary, self.window.icd_panel.assignments), fmt))
        except OSError as exc:
            self.window.show_error("导出失败", f"无法写入 {path}：{exc.strerror}")
            return False
        self.window.statusBar().showMessage(f"已导出 {path}", 5000)
        self.window.exported.emit(str(path), fmt)
        return True
