"""Opening a record in the window: a text or .docx file at once, as before; a PDF, a scan, a photo, a FHIR
document or a patient folder (several files dropped or chosen together, in the order the doctor confirms in
``file_order``) off the GUI thread, the status bar naming
the page and the phase (读取第 2/17 页 · 文字识别), 停止 (Esc) cancelling between pages. The record on screen stays
until the new one is read; a file that cannot be read is one dialog line and changes nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from desktop.file_order import ask_file_order
from inference.documents import Document, ReadOptions, load_documents, reads_pages
from inference.errors import GenerationCancelled

if TYPE_CHECKING:
    from desktop.main_window import MainWindow


class RecordOpening(QObject):
    page_read = Signal(int, int, str)  # page, pages, phase: from the reading thread, shown on the GUI thread
    finished = Signal(bool)  # a background read ended: True when a record was shown

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.reading = False
        self._cancel = threading.Event()
        self.choose_order = ask_file_order  # (window, paths) -> paths in order, [] when cancelled; tests replace it
        self.page_read.connect(self._show_page)

    def open(self, paths: list[str]) -> bool:
        """Open the files as one record. Returns whether it was shown (a file read at once) or is being read."""
        window = self.window
        if self.reading:
            window.statusBar().showMessage("正在读取上一份病历，请稍候或按 Esc 停止", 5000)
            return False
        if len(paths) == 1 and not reads_pages(Path(paths[0])):
            return window.adopt_document(lambda: load_documents(paths), "无法打开病历")
        if len(paths) > 1:
            paths = self.choose_order(window, paths)  # the doctor sets the order of the headings
            if not paths:
                return False
        self.reading = True
        self._cancel.clear()
        options = ReadOptions(max_pages=window.config.max_record_pages, cancelled=self._cancel.is_set,
                              on_page=lambda page, pages, phase: self.page_read.emit(page, pages, phase))
        window.statusBar().showMessage("正在读取病历…")
        window.render()
        window.background.run("open", lambda: load_documents(paths, options), self._read, self._failed)
        return True

    def cancel(self) -> None:
        self._cancel.set()

    def _show_page(self, page: int, pages: int, phase: str) -> None:
        if self.reading:
            self.window.statusBar().showMessage(f"读取病历 第 {page}/{pages} 页 · {phase}")

    def _read(self, document: Document) -> None:
        self.reading = False
        self.finished.emit(self.window.adopt_document(lambda: document, "无法打开病历"))

    def _failed(self, exc: Exception) -> None:
        self.reading = False
        if isinstance(exc, GenerationCancelled):
            self.window.statusBar().showMessage("已停止读取；窗口中仍是原来的病历", 8000)
            self.window.render()
        else:
            self.window.refuse_document("无法打开病历", exc)
        self.finished.emit(False)
