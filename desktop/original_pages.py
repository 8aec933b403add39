"""原件: the page of the original a statement or finding came from, with the line's box drawn on it.

For a record read from pages (a PDF, a scan, a photo), clicking a statement or a finding highlights its source in
the document pane, as for any record, and also shows this window (non-modal, beside the main one): the page
rendered off the GUI thread, the box around the source line in red, and the file, page and the OCR's confidence
in its title. A record reopened from the history, whose files are not at hand, says so in the window instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QScrollArea, QVBoxLayout, QWidget

from inference.documents import PageImage, page_image
from inference.record.grounding import SourceSpan
from inference.record.provenance import SourceLine

if TYPE_CHECKING:
    from desktop.main_window import MainWindow

BOX_COLOUR = QColor(220, 30, 30)
_KEPT_PAGES = 16  # rendered pages kept (a page's PNG is about 0.2-1 MB)


class OriginalPageDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("original_page")
        self.setWindowTitle("原件")
        self.setModal(False)
        self.caption = QLabel()
        self.caption.setObjectName("original_caption")
        self.caption.setWordWrap(True)
        self.image = QLabel()
        self.image.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.image)
        self.scroll.setWidgetResizable(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addWidget(self.scroll, 1)
        self.resize(760, 720)
        self.box: QRectF | None = None  # the highlighted line, in the image's pixels (tests read it)

    def show_page(self, line: SourceLine, page: PageImage) -> None:
        pixmap = QPixmap()
        pixmap.loadFromData(page.png, "PNG")
        x0, y0, x1, y1 = (v * page.scale for v in line.box)
        self.box = QRectF(x0 - 3, y0 - 3, x1 - x0 + 6, y1 - y0 + 6)
        painter = QPainter(pixmap)
        painter.setPen(QPen(BOX_COLOUR, 3))
        painter.drawRect(self.box)
        painter.end()
        self.image.setPixmap(pixmap)
        self.image.resize(pixmap.size())
        self.caption.setText(_caption(line))
        self.scroll.ensureVisible(int(self.box.center().x()), int(self.box.center().y()), 200, 200)
        self.show()
        self.raise_()

    def show_note(self, line: SourceLine, note: str) -> None:
        self.box = None
        self.image.clear()
        self.caption.setText(f"{_caption(line)}\n{note}")
        self.show()
        self.raise_()


def _caption(line: SourceLine) -> str:
    sure = "" if line.confidence is None else f"，文字识别置信度 {line.confidence:.2f}" + ("（不确定，请核对）" if line.uncertain else "")
    return f"{line.where()}{sure}"


class OriginalPages:
    """Follows the sources the document pane shows: for a record read from pages, their page in the dialog."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.dialog = OriginalPageDialog(window)
        # Pages rendered this session: going through a page's statements renders it once, not once a click.
        self._rendered: dict[tuple[Path, int], PageImage] = {}
        window.document_pane.sources_shown.connect(self.follow)

    def follow(self, spans: list[SourceSpan]) -> None:
        record = self.window.record
        if record is None or not record.document.provenance or not spans:
            return
        lines = record.document.provenance.overlapping(spans[0].start, spans[0].end)
        if not lines:
            return
        line = min(lines, key=lambda found: found.confidence if found.confidence is not None else 1.0)
        path = record.document.source_path(line.file_name)
        if path is None:
            self.dialog.show_note(line, "原件文件不在本机此次打开的文件中（从历史记录打开），无法显示页面图像；请查阅纸质或 EMR 原件")
            return
        key = (path, line.page)
        if key in self._rendered:
            self.dialog.show_page(line, self._rendered[key])
            return

        def rendered(page: PageImage) -> None:
            if len(self._rendered) >= _KEPT_PAGES:
                self._rendered.pop(next(iter(self._rendered)))
            self._rendered[key] = page
            self.dialog.show_page(line, page)

        self.window.background.run("original_page", lambda: page_image(path, line.page), rendered,
                                   lambda exc: self.dialog.show_note(line, getattr(exc, "message", str(exc))))
