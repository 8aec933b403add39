"""The window's 统计 view and cohort filter: charts drawn from the history's figures, a cohort listed and exported
pseudonymously, a failed run and a signature's standing findings counted."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtCharts import QBarSeries, QLineSeries

from desktop.history_controller import HistoryController
from inference.history.stats import read_stats
from tests.conftest import SAMPLE_RECORD
from tests.test_desktop import FakeJob, _generate, _ready, make_window  # noqa: F401  (fixture)
from tests.test_desktop_history import Signer, _generated, history, written  # noqa: F401  (fixtures)


def _signed_in_window(qtbot, make_window, history):  # noqa: F811
    window, controller = _generated(qtbot, make_window, history)
    controller.sign_action.trigger()
    written(qtbot, controller)
    return window, controller


def test_signing_in_the_window_keeps_the_findings_that_stood(qtbot, make_window, history) -> None:  # noqa: F811
    window, controller = _signed_in_window(qtbot, make_window, history)
    standing = sorted(f.rule_id for f in window.record.validation.findings)
    event = next(e for e in history.audit_log(controller.document_id) if e.action == "status")
    assert sorted(event.detail["standing_rules"]) == standing
    report = read_stats(history)
    assert report.rows()[0].signed == 1 and report.rows()[0].findings_standing == len(standing)


def test_a_failed_run_is_counted_not_its_words(qtbot, make_window, history) -> None:  # noqa: F811
    window = make_window(FakeJob(tokens=2, error="模型输出无法解析"))
    controller = HistoryController(window, history, sign=Signer())
    _ready(qtbot, window)
    window.open_file(str(SAMPLE_RECORD))
    with qtbot.waitSignal(window.host.worker.failed, timeout=20_000):
        window.generate_action.trigger()
    qtbot.waitUntil(lambda: any(e.action == "generate_failed" for e in history.audit_log()), timeout=10_000)
    event = next(e for e in history.audit_log() if e.action == "generate_failed")
    assert event.detail["error"] == "GenerationError" and event.detail["exit_code"] == 5
    assert "无法解析" not in str(event.detail)
    assert read_stats(history).rows()[0].failed == 1
    del controller


def test_the_stats_view_draws_the_historys_figures(qtbot, make_window, history) -> None:  # noqa: F811
    window, controller = _signed_in_window(qtbot, make_window, history)
    dialog = controller.show_stats()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=10_000)
    report = dialog.report
    assert set(dialog.views) == {"kept_chart", "sign_time_chart", "failure_chart", "latency_chart", "speed_chart",
                                 "rules_chart"}
    lines = {s.name(): s for s in dialog.views["kept_chart"].chart().series() if isinstance(s, QLineSeries)}
    week = report.rows("week")[-1].group
    for heading, by_week in report.kept_by_week().items():
        points = lines[heading].points()
        if by_week[week] is None:
            assert points == []
        else:
            assert points[-1].y() == by_week[week] * 100
    (latency,) = [s for s in dialog.views["latency_chart"].chart().series() if isinstance(s, QBarSeries)]
    assert latency.barSets()[0].at(0) == report.rows("model")[0].latency_s
    assert f"签署 {report.rows()[0].signed} 份" in dialog.summary.text()
    assert dialog.width() <= 1366 and dialog.height() <= 768  # the ward's smallest screen
    dialog.period.setCurrentIndex(dialog.period.count() - 1)  # 全部: read again, off the GUI thread
    qtbot.waitUntil(lambda: controller.panel.background.pending == 0, timeout=10_000)
    assert dialog.report is not report


def test_the_history_panel_lists_and_exports_a_cohort(qtbot, make_window, history, tmp_path: Path) -> None:  # noqa: F811
    window, controller = _signed_in_window(qtbot, make_window, history)
    panel = controller.panel
    panel.cohort_box.setText("LVEF<40% 且 I50*")
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.refresh()
    assert [r.document_id for r in panel.records] == [controller.document_id]
    panel.cohort_box.setText("LVEF<30%")
    with qtbot.waitSignal(panel.refreshed, timeout=10_000):
        panel.refresh()
    assert panel.records == []
    panel.cohort_box.setText("LVEF<<4")
    with qtbot.waitSignal(panel.store_failed, timeout=10_000) as failed:
        panel.refresh()
    assert "无法理解的条件" in failed.args[0]
    panel.cohort_box.setText("LVEF<40%")
    target = tmp_path / "cohort.csv"
    panel.choose_export_path = lambda: str(target)
    with qtbot.waitSignal(panel.cohort_exported, timeout=10_000) as exported:
        panel.export_cohort()
    assert exported.args == [1, str(target)]
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert any(r["parameter"] == "lvef" for r in rows) and "file_name" not in rows[0]
    assert SAMPLE_RECORD.name not in target.read_text(encoding="utf-8")
    assert any(e.action == "cohort_export" for e in history.audit_log())


def test_a_cohort_export_that_cannot_be_written_says_so_in_one_line(qtbot, make_window, history, tmp_path) -> None:  # noqa: F811
    window, controller = _signed_in_window(qtbot, make_window, history)
    panel = controller.panel
    panel.cohort_box.setText("LVEF<40%")
    target = tmp_path / "no such folder" / "cohort.csv"
    panel.choose_export_path = lambda: str(target)
    with qtbot.waitSignal(panel.store_failed, timeout=10_000) as failed:
        panel.export_cohort()
    assert failed.args[0].startswith("无法写入") and "\n" not in failed.args[0] and not target.exists()
