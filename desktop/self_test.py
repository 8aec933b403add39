"""``medbrief-desktop --self-test``: the window as a doctor gets it, run offscreen on the sample record.

The same checks as ``medbrief --self-test`` plus what only the desktop can break in a copied folder: Qt's
platform plugin, a font that shows Chinese, the engine's worker thread loading the configured (else the
demo) model, the window's summary, findings and ICD codes, and the history controller writing the run to a
temporary store and reading it back. One line per check; exit 0 only when every check passes, else 9.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inference.cli.engine_options import self_test_settings
from inference.cli.self_test import (
    HISTORY,
    HISTORY_DETAIL,
    MODEL,
    SUMMARY,
    TABLE,
    SelfTestChecks,
    check_read_back,
    check_summary,
    core_checks,
    describe_engine,
    finish,
    report_checks,
)
from inference.crash_log import internal_error
from inference.errors import MedBriefError
from inference.paths import sample_record_path

LOAD_TIMEOUT_S = 600.0  # a 14B model from a slow disk
RUN_TIMEOUT_S = 900.0  # the sample on a CPU-only PC


def run_desktop_self_test(argv: list[str]) -> int:
    """One line per check and exit 0 or 9; a failure outside every check is one line and exit 11, logged."""
    try:
        return _self_test(argv)
    except Exception as exc:  # noqa: BLE001 - a self-test reports what broke, it does not crash
        error = internal_error(exc, "medbrief-desktop --self-test")
        print(f"失败  自检：{error.message}", flush=True)
        return error.exit_code


def _self_test(argv: list[str]) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _give_stdout_a_console()
    from PySide6.QtGui import QFontDatabase
    from PySide6.QtWidgets import QApplication

    from desktop.app import CJK_FONTS, build_window, load_startup_config, pick_cjk_font

    app = QApplication.instance() or QApplication(argv[:1])
    checks = SelfTestChecks()

    def qt() -> tuple[Any, str]:
        pick_cjk_font(app)  # type: ignore[arg-type]
        families = set(QFontDatabase.families())
        chinese = [family for family in CJK_FONTS if family in families]
        if not chinese:
            raise MedBriefError("没有可显示中文的字体，界面会显示方框 / no font that shows Chinese is installed")
        return app, f"平台 {app.platformName()}，字体 {chinese[0]}"

    try:
        settings = self_test_settings([a for a in argv[1:] if a != "--self-test"], "medbrief-desktop --self-test")
    except MedBriefError as exc:  # a config file or a flag that does not hold: one line, its exit code
        print(f"medbrief-desktop: {exc.message}", file=sys.stderr, flush=True)
        return exc.exit_code
    checks.run("Qt 界面与中文字体", qt)
    core_checks(checks)
    if settings is None:
        return finish(checks)
    config, _ = load_startup_config()  # the active ICD table; the engine is the one parsed above
    config.engine = settings
    alerts: list[str] = []
    window = build_window(config, alert=lambda _w, title, message: alerts.append(f"{title}：{message}"),
                          confirm=lambda *_: True)
    with tempfile.TemporaryDirectory(prefix="medbrief-self-test-") as folder:
        try:
            _window_checks(checks, window, alerts, Path(folder))
        finally:
            window.host.stop()
            window.close()
    return finish(checks)


def _window_checks(checks: SelfTestChecks, window: Any, alerts: list[str], folder: Path) -> None:
    from desktop.history_controller import HistoryController
    from inference.history.store import HistoryStore

    store = HistoryStore.open(folder / "history.sqlite")
    controller = HistoryController(window, store, sign=lambda *_: None)
    reports: list[Any] = []
    window.report_ready.connect(reports.append)

    def model() -> tuple[Any, str]:
        _wait(lambda: window.engine_info is not None or bool(alerts), LOAD_TIMEOUT_S)
        if window.engine_info is None:
            raise MedBriefError(alerts[-1] if alerts else "模型加载超时 / the model did not load in time")
        return window.engine_info, describe_engine(window.engine_info)

    def summary() -> tuple[Any, str]:
        if not window.open_file(str(sample_record_path())):
            raise MedBriefError(alerts[-1] if alerts else "样例病历无法打开 / the sample record did not open")
        window.generate_action.trigger()
        _wait(lambda: bool(reports) or bool(alerts), RUN_TIMEOUT_S)
        if not reports:
            raise MedBriefError(alerts[-1] if alerts else "摘要超时 / the summary did not finish in time")
        shown = window.current_summary()
        if shown is None or shown.chief_complaint != reports[0].result.summary.chief_complaint:
            raise MedBriefError("窗口显示的摘要与生成的不同 / the window does not show the summary it generated")
        return reports[0], check_summary(reports[0])

    def history() -> tuple[Any, str]:
        _wait(lambda: controller.document_id is not None and not window.writes.pending, 60.0)
        if controller.document_id is None:
            raise MedBriefError("摘要未写入历史记录 / the run was not saved to the history")
        check_read_back(store, controller.document_id, reports[0])
        return None, HISTORY_DETAIL

    try:
        checks.run(MODEL, model)
        checks.run(SUMMARY, summary, needs=(MODEL, TABLE))
        report_checks(checks)
        checks.run(HISTORY, history, needs=(SUMMARY,))
    finally:
        window.writes.wait()
        store.close()


def _wait(done: Callable[[], bool], timeout_s: float) -> None:
    """Let Qt deliver the worker's signals until ``done()`` or the time is up."""
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def _give_stdout_a_console() -> None:
    """A windowed Windows build has no stdout: print to the console it was started from (``start /wait
    medbrief-desktop --self-test`` in cmd), else to ``medbrief-self-test.txt`` in the temp folder. The exit
    code is the same either way."""
    if sys.stdout is not None:
        return
    stream = None
    if sys.platform == "win32":
        import ctypes

        if ctypes.windll.kernel32.AttachConsole(-1):  # ATTACH_PARENT_PROCESS
            stream = open("CONOUT$", "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    if stream is None:
        stream = open(Path(tempfile.gettempdir()) / "medbrief-self-test.txt", "w", encoding="utf-8")  # noqa: SIM115
    sys.stdout = sys.stderr = stream
