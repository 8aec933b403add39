"""Render the main window after summarizing the sample record on the demo model → docs/screenshot.png.

    QT_QPA_PLATFORM=offscreen MEDBRIEF_DATA_DIR=$(mktemp -d) .venv/bin/python tools/screenshot.py [OUT.png]

Needs a CJK font (setup.sh installs fonts-noto-cjk) or Chinese renders as boxes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop.app import build_window, load_startup_config, open_history, pick_cjk_font  # noqa: E402
from desktop.history_controller import HistoryController  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"
    app = QApplication(sys.argv[:1])
    pick_cjk_font(app)
    config, error = load_startup_config()
    window = build_window(config, error)
    window.resize(1366, 768)
    window.show()
    lock, store, _code = open_history()
    if store is not None:
        controller = HistoryController(window, store)
        controller.dock.show()  # the ward layout at its tightest: 1366×768 with 历史记录 open
    loop = QEventLoop()
    window.host.worker.loaded.connect(loop.quit)
    window.host.worker.load_failed.connect(loop.quit)
    QTimer.singleShot(120_000, loop.quit)
    loop.exec()
    if window.engine_info is None:
        print("model did not load", file=sys.stderr)
        return 4
    window.open_file(str(ROOT / "resources" / "samples" / "sample_record.txt"))
    window.report_ready.connect(loop.quit)
    window.host.worker.failed.connect(loop.quit)
    window.generate()
    loop.exec()
    if store is not None:  # the history lists the run (queried off the GUI thread)
        controller.panel.refreshed.connect(loop.quit)
        QTimer.singleShot(0, controller.panel.refresh)
        QTimer.singleShot(10_000, loop.quit)
        loop.exec()
    exams = window.summary_pane.editors["auxiliary_exams"]
    cursor = exams.textCursor()
    cursor.setPosition(exams.toPlainText().find("LVEF"))
    exams.setTextCursor(cursor)  # show source highlighting for one statement
    app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out))
    window.host.stop()
    if store is not None:
        window.writes.wait()
        store.close()
    if lock is not None:
        lock.release()
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
