"""统计: what the history says, in charts a department head reads at a glance — AI text kept per section over
time, time to sign, rejected and failed runs, latency and tokens/s per model, the rules doctors sign over. The
figures are read off the GUI thread (``inference.history.stats``); this only draws them."""

from __future__ import annotations

from datetime import date, timedelta

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QLineSeries,
    QValueAxis,
)
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QComboBox, QDialog, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from desktop.background import Background
from inference.history.stats import Dashboard, StatsReport, StatsRow, read_stats
from inference.history.store import HistoryStore

PERIODS = (("近 4 周", 28), ("近 12 周", 84), ("近一年", 365), ("全部", 0))


def _value_axis(chart: QChart, series: object, top: float, label_format: str, where: Qt.AlignmentFlag) -> None:
    axis = QValueAxis()
    axis.setRange(0, top if top > 0 else 1)
    axis.setLabelFormat(label_format)
    axis.applyNiceNumbers()
    chart.addAxis(axis, where)
    series.attachAxis(axis)  # type: ignore[attr-defined]


def _category_axis(chart: QChart, series: object, categories: list[str], where: Qt.AlignmentFlag) -> None:
    axis = QBarCategoryAxis()
    axis.append(categories or ["—"])
    chart.addAxis(axis, where)
    series.attachAxis(axis)  # type: ignore[attr-defined]


def _chart(title: str) -> QChart:
    chart = QChart()
    chart.setTitle(title)
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignBottom)
    chart.setMargins(chart.margins() * 0)
    return chart


def bar_chart(title: str, categories: list[str], sets: dict[str, list[float]], label_format: str = "%.0f",
              horizontal: bool = False) -> QChart:
    chart = _chart(title)
    series = QHorizontalBarSeries() if horizontal else QBarSeries()
    for name, values in sets.items():
        bar = QBarSet(name)
        bar.append(values)
        series.append(bar)
    chart.addSeries(series)
    top = max((v for values in sets.values() for v in values), default=0) * 1.15
    categories_at, values_at = ((Qt.AlignmentFlag.AlignLeft, Qt.AlignmentFlag.AlignBottom) if horizontal
                                else (Qt.AlignmentFlag.AlignBottom, Qt.AlignmentFlag.AlignLeft))
    _category_axis(chart, series, categories, categories_at)
    _value_axis(chart, series, top, label_format, values_at)
    chart.legend().setVisible(len(sets) > 1)
    return chart


def line_chart(title: str, categories: list[str], lines: dict[str, list[float | None]]) -> QChart:
    """Shares (0–1) drawn as percentages; a week without data for a line is a gap in it, not a zero."""
    chart = _chart(title)
    series_list = []
    for name, values in lines.items():
        series = QLineSeries()
        series.setName(name)
        series.setPointsVisible(True)
        for x, value in enumerate(values):
            if value is not None:
                series.append(x, value * 100)
        chart.addSeries(series)
        series_list.append(series)
    x_axis = QBarCategoryAxis()
    x_axis.append(categories or ["—"])
    y_axis = QValueAxis()
    y_axis.setRange(0, 100)
    y_axis.setLabelFormat("%.0f%%")
    chart.addAxis(x_axis, Qt.AlignmentFlag.AlignBottom)
    chart.addAxis(y_axis, Qt.AlignmentFlag.AlignLeft)
    for series in series_list:
        series.attachAxis(x_axis)
        series.attachAxis(y_axis)
    return chart


def _numbers(rows: list[StatsRow], field: str, scale: float = 1.0) -> list[float]:
    return [float(getattr(row, field) or 0.0) * scale for row in rows]


def charts_of(figures: Dashboard) -> dict[str, QChart]:
    """The view's charts, by object name: drawn, nothing computed."""
    weeks, kept, models, rules = figures.weeks, figures.kept_by_week, figures.models, figures.rules
    week_names = [row.group for row in weeks]
    return {
        "kept_chart": line_chart("签署时保留的 AI 文字（按段落）", week_names,
                                 {heading: [by_week.get(w) for w in week_names] for heading, by_week in kept.items()}),
        "sign_time_chart": bar_chart("草稿到签署（中位数，分钟）", week_names,
                                     {"分钟": _numbers(weeks, "minutes_to_sign")}, "%.1f"),
        "failure_chart": bar_chart("未通过核对与生成失败（%）", week_names,
                                   {"未通过核对": _numbers(weeks, "rejected_share", 100),
                                    "生成失败": _numbers(weeks, "failure_share", 100)}),
        "latency_chart": bar_chart("每份耗时（中位数，秒）", [row.group for row in models],
                                   {"秒": _numbers(models, "latency_s")}, "%.1f"),
        "speed_chart": bar_chart("生成速度（中位数，tokens/s）", [row.group for row in models],
                                 {"tokens/s": _numbers(models, "tokens_per_s")}, "%.1f"),
        "rules_chart": bar_chart("医生签署时仍未处理的核对提示（按规则）", [rule for rule, _s, _t in rules],
                                 {"提示": [float(shown) for _r, shown, _t in rules],
                                  "签署时仍在": [float(standing) for _r, _s, standing in rules]}, horizontal=True),
    }


class StatsDialog(QDialog):
    def __init__(self, store: HistoryStore, background: Background, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("统计")
        self.store = store
        self.background = background
        self.report: StatsReport | None = None
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.period = QComboBox()
        self.period.setObjectName("stats_period")
        for label, days in PERIODS:
            self.period.addItem(label, days)
        self.period.setCurrentIndex(1)
        self.period.currentIndexChanged.connect(self.refresh)
        self.summary = QLabel("正在统计…")
        self.summary.setObjectName("stats_summary")
        self.summary.setWordWrap(True)
        bar.addWidget(QLabel("时间范围"))
        bar.addWidget(self.period)
        bar.addWidget(self.summary, 1)
        layout.addLayout(bar)
        self.grid = QGridLayout()
        layout.addLayout(self.grid, 1)
        self.views: dict[str, QChartView] = {}
        self.resize(1280, 680)  # fits a 1366×768 ward screen with the taskbar
        self.refresh()

    def since(self) -> date | None:
        days = int(self.period.currentData() or 0)
        return date.today() - timedelta(days=days - 1) if days else None

    def refresh(self) -> None:
        since = self.since()
        self.background.run("stats", lambda: Dashboard.of(read_stats(self.store, since)), self._show,
                            lambda exc: self.summary.setText(f"统计失败：{getattr(exc, 'message', str(exc))}"))

    def _show(self, figures: Dashboard) -> None:
        self.report = figures.report
        overall = figures.overall
        kept = f"{overall.kept_share:.0%}" if overall.kept_share is not None else "—"
        minutes = f"{overall.minutes_to_sign:.1f} 分钟" if overall.minutes_to_sign is not None else "—"
        self.summary.setText(f"签署 {overall.signed} 份，保留 AI 文字 {kept}，草稿到签署中位数 {minutes}；"
                             f"生成 {overall.runs or 0} 次，失败 {overall.failed or 0} 次。")
        for index, (name, chart) in enumerate(charts_of(figures).items()):
            view = self.views.get(name)
            if view is None:
                view = QChartView()
                view.setObjectName(name)
                view.setRenderHint(QPainter.RenderHint.Antialiasing)
                view.setMinimumSize(300, 200)
                self.views[name] = view
                self.grid.addWidget(view, index // 3, index % 3)
            old = view.chart()
            view.setChart(chart)
            if old is not None:
                old.deleteLater()
