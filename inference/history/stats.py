"""What the history says about the drafts, for a department head and IT: per group (section, doctor, model, prompt
version, week), how much model text doctors kept when signing, what they added or took away, the codes they
accepted, the findings they signed over, the time from draft to signature; runs, rejections, stops and failures,
latency and tokens per second. Read on a snapshot; no patient text is in a figure."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import func, select

from inference.history.cohort import check_period, utc_bound
from inference.history.edit_measures import SectionEdit, SigningMeasures
from inference.history.models import AuditEventRow, RunRow, SigningMeasuresRow, SummaryVersionRow
from inference.history.store import HistoryStore
from inference.record.status import DraftStatus
from inference.record.summary import SECTION_HEADINGS, SECTIONS

GROUPINGS = ("section", "doctor", "model", "prompt", "week")
ALL = "全部"
F = TypeVar("F", bound="Fact")


@dataclass(frozen=True)
class Fact:
    """What every fact is grouped by: when (UTC: signed, run, failed), the model and the prompt version."""

    at: datetime
    model: str
    prompt: str


@dataclass(frozen=True)
class SigningFact(Fact):
    signer: str
    measures: SigningMeasures


@dataclass(frozen=True)
class RunFact(Fact):
    status: str  # of the run's draft: draft, rejected or stopped
    total_s: float | None
    tokens_per_s: float | None


@dataclass(frozen=True)
class FailureFact(Fact):
    error: str


# How a fact is grouped; a run or a failure has no signing doctor, so --by doctor groups signatures only.
GROUP_KEYS: dict[str, Callable[[Fact], str]] = {
    "doctor": lambda fact: getattr(fact, "signer", "") or "（未署名）",
    "model": lambda fact: fact.model or "（未知）",
    "prompt": lambda fact: fact.prompt or "（未知）",
    "week": lambda fact: week_of(fact.at),
}


def week_of(at: datetime) -> str:
    """The ward's ISO week of a UTC time: 2026-W49."""
    local = at.replace(tzinfo=timezone.utc).astimezone()
    year, week, _day = local.isocalendar()
    return f"{year}-W{week:02d}"


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.fmean(values), 3) if values else None


def _median(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(statistics.median(values), 3) if values else None


@dataclass
class StatsRow:
    group: str
    signed: int = 0
    kept_share: float | None = None  # of the model's characters, kept in what was signed
    edit_distance: float | None = None  # characters, mean per signed record (per section for --by section)
    rewritten_share: float | None = None  # of sections with model text: less than half of it kept
    values_added: int = 0
    values_removed: int = 0
    diagnoses_added: int | None = None
    diagnoses_removed: int | None = None
    codes_accepted: int | None = None
    codes_changed: int | None = None
    codes_added: int | None = None
    codes_removed: int | None = None
    findings_shown: int | None = None
    findings_standing: int | None = None  # stood at signing (signatures that recorded them)
    signed_over: int | None = None  # signatures given over a blocker, with a reason
    minutes_to_sign: float | None = None  # median
    runs: int | None = None
    rejected_share: float | None = None
    stopped_share: float | None = None
    failed: int | None = None
    failure_share: float | None = None  # of runs started: ended without a draft
    latency_s: float | None = None  # median per run
    tokens_per_s: float | None = None  # median per run

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _edit_fields(row: StatsRow, edits: list[SectionEdit]) -> None:
    drafted = sum(e.draft_chars for e in edits)
    row.kept_share = round(sum(e.kept_chars for e in edits) / drafted, 3) if drafted else None
    with_text = [e for e in edits if e.draft_chars]
    row.rewritten_share = round(sum(e.rewritten for e in with_text) / len(with_text), 3) if with_text else None
    row.values_added = sum(e.values_added for e in edits)
    row.values_removed = sum(e.values_removed for e in edits)


def _signing_fields(row: StatsRow, facts: list[SigningFact]) -> None:
    row.signed = len(facts)
    measures = [f.measures for f in facts]
    _edit_fields(row, [e for m in measures for e in m.sections])
    row.edit_distance = _mean(m.distance for m in measures)
    for name in ("diagnoses_added", "diagnoses_removed", "codes_accepted", "codes_changed", "codes_added",
                 "codes_removed"):
        setattr(row, name, sum(getattr(m, name) for m in measures))
    row.findings_shown = sum(sum(m.findings_shown.values()) for m in measures)
    row.findings_standing = sum(sum(m.findings_standing.values()) for m in measures if m.findings_standing)
    row.signed_over = sum(1 for m in measures if m.overridden)
    row.minutes_to_sign = _median(m.seconds_to_sign / 60 for m in measures)


def _run_fields(row: StatsRow, runs: list[RunFact], failures: list[FailureFact]) -> None:
    row.runs = len(runs)
    row.rejected_share = round(sum(r.status == DraftStatus.REJECTED for r in runs) / len(runs), 3) if runs else None
    row.stopped_share = round(sum(r.status == DraftStatus.STOPPED for r in runs) / len(runs), 3) if runs else None
    row.failed = len(failures)
    started = len(runs) + len(failures)
    row.failure_share = round(len(failures) / started, 3) if started else None
    row.latency_s = _median(r.total_s for r in runs if r.total_s is not None)
    row.tokens_per_s = _median(r.tokens_per_s for r in runs if r.tokens_per_s)


@dataclass
class StatsReport:
    signings: list[SigningFact] = field(default_factory=list)
    runs: list[RunFact] = field(default_factory=list)
    failures: list[FailureFact] = field(default_factory=list)

    def rows(self, by: str | None = None) -> list[StatsRow]:
        if by == "section":
            return [self._section_row(name) for name, _heading in SECTIONS]
        key = GROUP_KEYS.get(by or "", lambda _fact: ALL)
        signings = _grouped(self.signings, key)
        runs, failures = ({}, {}) if by == "doctor" else (_grouped(self.runs, key), _grouped(self.failures, key))
        rows = []
        for group in sorted(set(signings) | set(runs) | set(failures)) or [ALL]:
            row = StatsRow(group)
            _signing_fields(row, signings.get(group, []))
            if by != "doctor":
                _run_fields(row, runs.get(group, []), failures.get(group, []))
            rows.append(row)
        return rows

    def _section_row(self, section: str) -> StatsRow:
        edits = [e for s in self.signings for e in s.measures.sections if e.section == section]
        row = StatsRow(SECTION_HEADINGS[section], signed=len(self.signings))
        _edit_fields(row, edits)
        row.edit_distance = _mean(e.distance for e in edits)
        return row

    def kept_by_week(self) -> dict[str, dict[str, float | None]]:
        """Section heading → week → share of the model's text kept (the chart of AI text kept over time)."""
        by_week = _grouped(self.signings, GROUP_KEYS["week"])
        chart: dict[str, dict[str, float | None]] = {}
        for section, heading in SECTIONS:
            chart[heading] = {}
            for week in sorted(by_week):
                row = StatsRow(week)
                _edit_fields(row, [e for s in by_week[week] for e in s.measures.sections if e.section == section])
                chart[heading][week] = row.kept_share
        return chart

    def rules(self) -> list[tuple[str, int, int]]:
        """(rule, findings shown on drafts, findings that stood when the doctor signed), most signed-over first:
        the rules doctors treat as noise."""
        shown, standing = Counter[str](), Counter[str]()
        for s in self.signings:
            shown.update(s.measures.findings_shown)
            standing.update(s.measures.findings_standing or {})
        return sorted(((rule, shown[rule], standing[rule]) for rule in set(shown) | set(standing)),
                      key=lambda item: (-item[2], -item[1], item[0]))


def _within(column: Any, since: date | None, until: date | None) -> list[Any]:
    return ([column >= utc_bound(since)] if since else []) + ([column <= utc_bound(until, end=True)] if until else [])


def read_stats(store: HistoryStore, since: date | None = None, until: date | None = None) -> StatsReport:
    """The facts of signatures, runs and failures between ``since`` and ``until`` (local dates, inclusive)."""
    check_period(since, until)
    report = StatsReport()
    with store.reading() as session:
        for row in session.execute(select(SigningMeasuresRow.signed_at, SigningMeasuresRow.signer,
                                          SigningMeasuresRow.model_file, SigningMeasuresRow.prompt_version,
                                          SigningMeasuresRow.measures).where(*_within(SigningMeasuresRow.signed_at, since, until))):
            try:
                measures = SigningMeasures.from_dict(row.measures)
            except (TypeError, ValueError):  # damaged on disk: left out
                continue
            report.signings.append(SigningFact(row.signed_at, row.model_file, row.prompt_version, row.signer,
                                               measures))
        statement = (select(RunRow.created_at, RunRow.model_file, RunRow.prompt_version, SummaryVersionRow.status,
                            func.json_extract(RunRow.timings, "$.total_s"),
                            func.json_extract(RunRow.timings, "$.tokens_per_s"))
                     .join(SummaryVersionRow, (SummaryVersionRow.run_id == RunRow.id)
                           & (SummaryVersionRow.origin == "model"))
                     .where(*_within(RunRow.created_at, since, until)))
        report.runs = [RunFact(at, model, prompt, status, _number(total), _number(speed))
                       for at, model, prompt, status, total, speed in session.execute(statement)]
        for at, detail in session.execute(select(AuditEventRow.at, AuditEventRow.detail).where(
                AuditEventRow.action == "generate_failed", *_within(AuditEventRow.at, since, until))):
            detail = detail if isinstance(detail, dict) else {}
            report.failures.append(FailureFact(at, str(detail.get("model", "")), "", str(detail.get("error", ""))))
    return report


def _grouped(facts: list[F], key: Callable[[Fact], str]) -> dict[str, list[F]]:
    groups: dict[str, list[F]] = defaultdict(list)
    for fact in facts:
        groups[key(fact)].append(fact)
    return groups


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


# The 统计 view: how many weeks or models one axis shows (older weeks: `medbrief stats --by week`), how many rules.
MAX_CATEGORIES = 26
TOP_RULES = 8


@dataclass(frozen=True)
class Dashboard:
    """What the 统计 view draws, computed with the report off the GUI thread."""

    report: StatsReport
    overall: StatsRow
    weeks: list[StatsRow]
    kept_by_week: dict[str, dict[str, float | None]]  # section heading → week → share kept
    models: list[StatsRow]  # models that ran in the period
    rules: list[tuple[str, int, int]]  # rule, shown, standing at signing

    @classmethod
    def of(cls, report: StatsReport) -> Dashboard:
        weeks = report.rows("week")[-MAX_CATEGORIES:]
        shown_weeks = {row.group for row in weeks}
        kept = {heading: {week: share for week, share in by_week.items() if week in shown_weeks}
                for heading, by_week in report.kept_by_week().items()}
        return cls(report, report.rows()[0], weeks, kept,
                   [row for row in report.rows("model") if row.runs][-MAX_CATEGORIES:],
                   [rule for rule in report.rules() if rule[1] or rule[2]][:TOP_RULES])
