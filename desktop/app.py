"""Entry point: ``medbrief-desktop [RECORD]`` or ``python -m desktop [RECORD]``."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

from PySide6.QtCore import QLibraryInfo, QLocale, QObject, QTranslator, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from desktop.history_controller import HistoryController
from desktop.main_window import MainWindow
from desktop.wording import chinese
from inference.crash_log import internal_error
from inference.errors import MedBriefError, StorageError
from inference.history.instance_lock import InstanceLock, InstanceRunning
from inference.history.store import HistoryStore
from inference.icd.table import open_table
from inference.llm.backends import open_engine
from inference.llm.model_catalog import resolve_model_path
from inference.llm.settings import AppConfig, load_config
from inference.paths import data_dir
from inference.pipeline import run_pipeline

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei")


def pick_cjk_font(app: QApplication) -> None:
    families = set(QFontDatabase.families())
    for family in CJK_FONTS:
        if family in families:
            app.setFont(QFont(family, 10))
            return


def load_startup_config() -> tuple[AppConfig, str]:
    try:
        config = load_config()
    except MedBriefError as exc:
        return AppConfig(), exc.message
    try:
        config.engine = config.engine.model_copy(update={"model_path": resolve_model_path(None, config)})
    except MedBriefError as exc:  # several models in the models folder and none chosen: settings will ask
        return config, exc.message
    return config, ""


def build_window(config: AppConfig, config_error: str = "", **window_options: Any) -> MainWindow:
    table, table_error = None, ""
    try:
        table = open_table(config.icd_table)
    except MedBriefError as exc:
        table_error = exc.message
    # run_pipeline is the worker's job: it runs in the worker thread and touches no widget.
    return MainWindow(open_engine, run_pipeline, config, table, table_error or config_error, **window_options)


def _critical(title: str, message: str) -> None:
    QMessageBox.critical(None, title, message)


def open_history(show_error: Callable[[str, str], None] = _critical) -> tuple[InstanceLock | None, HistoryStore | None, int]:
    """The single-instance lock and the history store; (None, None, exit code) when the app must not run."""
    lock = InstanceLock(data_dir() / "instance.lock")
    try:
        lock.acquire()
    except InstanceRunning as exc:
        show_error("MedBrief 已在运行", exc.message)
        return None, None, exc.exit_code
    except StorageError as exc:
        show_error("历史数据库不可用", exc.message)
        return None, None, exc.exit_code
    try:
        store = HistoryStore.open()
    except StorageError as exc:
        show_error("历史数据库不可用", exc.message)
        lock.release()
        return None, None, exc.exit_code
    return lock, store, 0


def show_fitting(window: QWidget) -> None:
    """Maximized on a ward PC's small screen (1366×768 and the like), at its own size on a large one."""
    screen = window.screen().availableGeometry() if window.screen() else None
    if screen is not None and (screen.width() <= 1600 or screen.height() <= 900):
        window.showMaximized()
    else:
        window.show()


def install_chinese_translations(app: QApplication) -> list[QTranslator]:
    """Qt's own zh_CN strings (file dialogs, standard buttons: 取消 not Cancel), from the translations PySide6
    ships; a build without them keeps English for those few and says nothing."""
    folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    installed = []
    for name in ("qtbase_zh_CN", "qt_zh_CN"):
        translator = QTranslator(app)
        if translator.load(name, folder) and app.installTranslator(translator):
            installed.append(translator)
    return installed


class _ErrorReporter(QObject):
    """Brings a failure from any thread to the GUI thread as one dialog (a queued signal)."""

    report = Signal(str, str)


def install_exception_hooks(show: Callable[[str, str], None]) -> _ErrorReporter:
    """An exception no handler caught — in a slot, on any thread — is logged for IT and shown as one line in
    Chinese; the window stays up (Qt's default would print it, or abort the process)."""
    reporter = _ErrorReporter()
    reporter.report.connect(show)

    def hook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, traceback)
            return
        reporter.report.emit("内部错误", chinese(internal_error(value, "desktop").message))

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    return reporter


def main(argv: Sequence[str] | None = None) -> int:
    """The app, and its last line of defence: whatever escapes is logged for IT and said in one dialog (exit 11)."""
    argv = list(sys.argv if argv is None else argv)
    if "--self-test" in argv[1:]:
        from desktop.self_test import run_desktop_self_test

        return run_desktop_self_test(argv)
    try:
        return _run(argv)
    except Exception as exc:  # noqa: BLE001 - start-up failed in a way nobody foresaw
        error = internal_error(exc, "medbrief-desktop")
        if QApplication.instance() is not None:
            QMessageBox.critical(None, "MedBrief 无法启动", chinese(error.message))
        print(f"medbrief-desktop: {error.message}", file=sys.stderr)
        return error.exit_code


def _run(argv: list[str]) -> int:
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("MedBrief")
    QLocale.setDefault(QLocale(QLocale.Language.Chinese, QLocale.Country.China))
    install_chinese_translations(app)  # type: ignore[arg-type]
    pick_cjk_font(app)  # type: ignore[arg-type]
    lock, store, code = open_history()
    if store is None:
        return code
    config, config_error = load_startup_config()
    window = build_window(config, config_error)
    reporter = install_exception_hooks(lambda title, message: window.show_error(title, message))
    try:
        HistoryController(window, store)
        show_fitting(window)
        if config_error:
            QMessageBox.warning(window, "配置文件无法读取", chinese(config_error) + "\n将使用默认设置。")
        for notice in store.notices:
            QMessageBox.warning(window, "历史数据库", chinese(notice))
        if len(argv) > 1:
            window.open_file(argv[1])  # a file association: a bad file is a dialog, never an abort
        return app.exec()
    finally:
        window.host.stop()  # the engine's thread ends before Qt destroys its object, whatever happened above
        reporter.deleteLater()
        store.close()
        if lock is not None:
            lock.release()

