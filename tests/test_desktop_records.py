"""Records from pages in the window: a scanned PDF or several dropped files read off the GUI thread with the page
and phase in the status bar, Esc stopping the read, a bad file one dialog line that changes nothing, and a
clicked statement showing its page of the original with the line's box."""

from __future__ import annotations

from pathlib import Path

from tests import record_files
from tests.conftest import SAMPLE_RECORD
from tests.test_desktop import _generate, _ready, make_window  # noqa: F401  (fixture)

SAMPLE = SAMPLE_RECORD.read_text(encoding="utf-8").strip()


def _read(qtbot, window, paths: list[Path]) -> bool:
    with qtbot.waitSignal(window.opening.finished, timeout=60_000) as finished:
        assert window.open_files([str(p) for p in paths])
    return finished.args[0]


def test_a_scanned_pdf_is_read_off_the_gui_thread_with_its_pages_named(qtbot, make_window, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    path = tmp_path / "外院病历.pdf"
    path.write_bytes(record_files.scanned_pdf([record_files.page_image(SAMPLE, 150)]))
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    assert _read(qtbot, window, [path])
    document = window.record.document
    assert document.provenance.ocr_pages == 1 and "慢性心力衰竭急性加重" in window.document_pane.toPlainText()
    assert "读取病历 第 1/1 页 · 文字识别" in messages and window.windowTitle().endswith("外院病历.pdf")


def test_files_dropped_together_are_one_record_in_the_order_the_doctor_sets(qtbot, make_window,  # noqa: F811
                                                                           tmp_path: Path) -> None:
    window = make_window()
    (tmp_path / "本院.pdf").write_bytes(record_files.text_pdf([SAMPLE], header=""))
    (tmp_path / "护理.txt").write_text("体温 36.8℃。", encoding="utf-8")
    asked: list[list[str]] = []
    window.opening.choose_order = lambda _window, paths: asked.append(paths) or list(reversed(paths))
    with qtbot.waitSignal(window.opening.finished, timeout=60_000):
        window.document_pane.files_dropped.emit([str(tmp_path / "本院.pdf"), str(tmp_path / "护理.txt")])
    assert [Path(p).name for p in asked[0]] == ["本院.pdf", "护理.txt"]  # offered in the order dropped
    text = window.document_pane.toPlainText()
    assert text.startswith("【护理.txt】\n体温 36.8℃。\n\n【本院.pdf】\n患者男性")
    window.opening.choose_order = lambda _window, _paths: []  # 取消: nothing is read, the record stays
    assert not window.open_files([str(tmp_path / "本院.pdf"), str(tmp_path / "护理.txt")])
    assert window.document_pane.toPlainText() == text and not window.opening.reading


def test_the_order_dialog_moves_files_up_and_down(qtbot) -> None:
    from desktop.file_order import FileOrderDialog

    dialog = FileOrderDialog(["/a/1.pdf", "/a/2.jpg", "/a/3.txt"])
    qtbot.addWidget(dialog)
    dialog.files.setCurrentRow(2)
    dialog.move(-1)
    dialog.move(-1)
    dialog.move(-1)  # already first: stays
    assert dialog.ordered() == ["/a/3.txt", "/a/1.pdf", "/a/2.jpg"]
    dialog.move(1)
    assert dialog.ordered() == ["/a/1.pdf", "/a/3.txt", "/a/2.jpg"] and dialog.files.currentRow() == 1


def test_esc_stops_a_long_read_and_keeps_the_record_on_screen(qtbot, make_window, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    assert window.open_file(str(SAMPLE_RECORD))
    path = tmp_path / "long.pdf"
    path.write_bytes(record_files.scanned_pdf([record_files.page_image(SAMPLE, 100)] * 6))
    window.opening.page_read.connect(lambda page, *_: page == 1 and window.stop_action.trigger())
    assert not _read(qtbot, window, [path])
    assert window.record.document.file_name == SAMPLE_RECORD.name and window.statusBar().currentMessage().startswith(
        "已停止读取")
    assert window.open_action.isEnabled() and not window.stop_action.isEnabled()


def test_an_unreadable_file_is_one_line_and_changes_nothing(qtbot, make_window, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    assert window.open_file(str(SAMPLE_RECORD))
    path = tmp_path / "加密.pdf"
    path.write_bytes(record_files.text_pdf([SAMPLE], password="secret"))
    assert not _read(qtbot, window, [path])
    assert window.last_error.startswith("PDF 已加密") and "\n" not in window.last_error
    assert window.record.document.file_name == SAMPLE_RECORD.name


def test_a_clicked_statement_shows_its_page_of_the_original_with_the_box(qtbot, make_window, tmp_path: Path) -> None:  # noqa: F811
    window = make_window()
    _ready(qtbot, window)
    path = tmp_path / "出院记录.pdf"
    path.write_bytes(record_files.text_pdf([SAMPLE, "出院诊断：慢性心力衰竭急性加重。"]))
    assert _read(qtbot, window, [path])
    _generate(qtbot, window)
    exams = window.summary_pane.editors["auxiliary_exams"]
    cursor = exams.textCursor()
    cursor.setPosition(exams.toPlainText().index("LVEF"))
    with qtbot.waitSignal(window.background.settled, timeout=30_000):
        exams.setTextCursor(cursor)
    dialog = window.originals.dialog
    qtbot.waitUntil(lambda: dialog.box is not None, timeout=30_000)
    assert dialog.isVisible() and dialog.caption.text() == "出院记录.pdf 第 1 页"
    pixmap = dialog.image.pixmap()
    assert 0 < dialog.box.left() < dialog.box.right() < pixmap.width()
    assert 0 < dialog.box.top() < pixmap.height() / 2  # the exam line stands in the page's upper half
    dialog.box = None
    lvef = next(s for s in window.record.validation.statements if s.text.startswith("LVEF"))
    window.document_pane.sources_shown.emit(lvef.sources)
    assert dialog.box is not None and len(window.originals._rendered) == 1  # the same page again: not rendered again
