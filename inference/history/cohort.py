"""Cohort queries over the history: records whose latest version states a value past a threshold (``LVEF<40%``,
``NT-proBNP>=1000 pg/mL``, converting units where ``unit_conversions.tsv`` allows), is coded under an ICD code
(``I50*``), or names a diagnosis (``诊断:心力衰竭``); conditions joined by ``and`` / ``且`` / ``&`` all hold.
Status and dates filter beside them. Reads run on a snapshot (``HistoryStore.reading``): a query never waits for
a process that is saving."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select

from inference import limits
from inference.errors import UsageError
from inference.history.models import DocumentRow, SummaryVersionRow, ValueIndexRow, latest_version_ids
from inference.record.clinical_terms import expand_terms
from inference.record.conversions import conversion, units_of
from inference.record.status import DraftStatus
from inference.record.values import fold, parameter_table, unit_spellings

if TYPE_CHECKING:
    from inference.history.store import HistoryStore

EXAMPLES = "LVEF<40%、NT-proBNP>=1000 pg/mL、I50*、诊断:心力衰竭"

OPERATORS: dict[str, Callable[[object, object], object]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq}
_JOINS = re.compile(r"\s+(?:and|AND)(?:\s+|$)|\s*[&；;且]\s*")
_THRESHOLD = re.compile(r"^(?P<name>[^<>=]+?)\s*(?P<op><=|>=|==|<|>|=)\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>.*)$")
_CODE = re.compile(r"^(?:icd[:：]\s*)?(?P<code>[A-Za-z]\d{2}(?:\.\d{1,4})?)(?:\.?\*)?$", re.IGNORECASE)
_DIAGNOSIS = re.compile(r"^(?:dx|诊断)\s*[:：]\s*(?P<text>.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Threshold:
    """``name op number unit``: the name resolved to a measured quantity where the units table knows it."""

    name: str
    parameter: str  # "" when the name is not in the parameters table: matched as written
    op: str
    number: float
    unit: str  # canonical spelling


@dataclass(frozen=True)
class CohortQuery:
    thresholds: tuple[Threshold, ...] = ()
    codes: tuple[str, ...] = ()  # a code matches itself and every code under it
    diagnoses: tuple[str, ...] = ()
    status: str | None = None
    since: date | None = None
    until: date | None = None  # inclusive
    text: str = ""  # the expression as given (the audit log keeps it with every export)


def _threshold(term: str) -> Threshold | None:
    folded = fold(term.replace("≥", ">=").replace("≤", "<="))
    match = _THRESHOLD.match(folded)
    if match is None:
        return None
    name, op, unit_text = match.group("name").strip(" :："), match.group("op"), match.group("unit").strip()
    op = "=" if op == "==" else op
    if not name or len(name) > 40:
        raise UsageError(f"检查项目名称有误：{term[:40]!r}（例：{EXAMPLES}）")
    _ranges, names = parameter_table()
    parameter = names.get(name.upper(), "")
    if unit_text:
        unit = unit_spellings().get(unit_text)
        if unit is None:
            raise UsageError(f"未知单位 {unit_text[:20]!r}：{term[:40]!r}（单位表见 resources/validation/units.tsv）")
    elif parameter and len(units_of(parameter)) == 1:
        unit = units_of(parameter)[0]
    else:
        known = "、".join(units_of(parameter)) if parameter else "单位"
        raise UsageError(f"{name[:40]!r} 的阈值须写单位（{known}）：{term[:40]!r}")
    if parameter and not any(conversion(parameter, unit, u) for u in units_of(parameter)):
        raise UsageError(f"{name[:40]!r} 不以 {unit} 计量，也无法换算（可用：{'、'.join(units_of(parameter))}）")
    return Threshold(name, parameter, op, float(match.group("number")), unit)


def check_period(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise UsageError(f"起始日期 {since} 晚于截止日期 {until}")


def parse_query(expression: str, *, known_codes: Collection[str] | None = None, status: str | None = None,
                since: date | None = None, until: date | None = None) -> CohortQuery:
    """The query an expression states; a condition it cannot read is one UsageError naming it. ``known_codes``:
    the code table's codes, so that a code pattern that matches none of them is refused, not answered empty."""
    if not isinstance(expression, str) or not expression.strip():
        raise UsageError(f"请给出检索条件（例：{EXAMPLES}）")
    if len(expression) > limits.COHORT_QUERY_CHARS:
        raise UsageError(f"检索条件过长（{len(expression)} 字，上限 {limits.COHORT_QUERY_CHARS}）")
    if status is not None and status not in set(DraftStatus):
        raise UsageError(f"未知状态 {status!r}（可用：{', '.join(DraftStatus)}）")
    check_period(since, until)
    expression = " ".join(expression.split())  # pasted across lines: one line
    terms = [t.strip() for t in _JOINS.split(expression) if t.strip()]
    if len(terms) > limits.COHORT_CONDITIONS:
        raise UsageError(f"条件过多（{len(terms)} 个，上限 {limits.COHORT_CONDITIONS}）")
    thresholds, codes, diagnoses = [], [], []
    for term in terms:
        if (diagnosis := _DIAGNOSIS.match(term)) is not None:
            diagnoses.append(diagnosis.group("text").strip()[:80])
        elif (code := _CODE.match(fold(term))) is not None:
            pattern = code.group("code").upper()
            if known_codes is not None and not any(c.startswith(pattern) for c in known_codes):
                raise UsageError(f"编码表中没有 {pattern} 或其下的编码")
            codes.append(pattern)
        elif (threshold := _threshold(term)) is not None:
            thresholds.append(threshold)
        else:
            raise UsageError(f"无法理解的条件 {term[:40]!r}（例：{EXAMPLES}）")
    return CohortQuery(tuple(thresholds), tuple(codes), tuple(diagnoses), status, since, until, expression.strip())


def _threshold_clause(threshold: Threshold) -> ColumnElement[bool]:
    """Rows of ``value_index`` past the threshold, in any unit the value converts from."""
    compare = OPERATORS[threshold.op]
    if threshold.parameter:
        units = [(u, f) for u in sorted(set(unit_spellings().values()))  # NT-proBNP in ng/mL, off the ranges
                 if (f := conversion(threshold.parameter, u, threshold.unit)) is not None]
        who = ValueIndexRow.parameter == threshold.parameter
    else:
        units = [(threshold.unit, 1.0)]
        who = func.upper(ValueIndexRow.term) == threshold.name.upper()
    per_unit = [and_(ValueIndexRow.unit == unit, compare(ValueIndexRow.value_number * factor, threshold.number))
                for unit, factor in units]
    return and_(who, or_(*per_unit) if per_unit else false())


def utc_bound(day: date, end: bool = False) -> datetime:
    local = datetime.combine(day, time.max if end else time.min).astimezone()
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def cohort_statement(query: CohortQuery) -> Select[tuple[int, str, datetime, str, str, str, int]]:
    """The matching records' latest versions: id, file name, time, status, diagnoses, codes, version id."""
    statement = (select(DocumentRow.id, DocumentRow.file_name, SummaryVersionRow.created_at, SummaryVersionRow.status,
                        SummaryVersionRow.diagnoses_text, SummaryVersionRow.icd_codes, SummaryVersionRow.id)
                 .join(SummaryVersionRow, SummaryVersionRow.document_id == DocumentRow.id)
                 .where(SummaryVersionRow.id.in_(latest_version_ids())))
    for threshold in query.thresholds:
        statement = statement.where(DocumentRow.id.in_(select(ValueIndexRow.document_id)
                                                       .where(_threshold_clause(threshold))))
    for code in query.codes:
        statement = statement.where(func.instr(" " + SummaryVersionRow.icd_codes, " " + code) > 0)
    for diagnosis in query.diagnoses:
        forms = list(dict.fromkeys([diagnosis, expand_terms(diagnosis)]))
        statement = statement.where(or_(*(SummaryVersionRow.diagnoses_text.contains(form, autoescape=True)
                                          for form in forms)))
    if query.status:
        statement = statement.where(SummaryVersionRow.status == query.status)
    if query.since:
        statement = statement.where(SummaryVersionRow.created_at >= utc_bound(query.since))
    if query.until:
        statement = statement.where(SummaryVersionRow.created_at <= utc_bound(query.until, end=True))
    return statement.order_by(SummaryVersionRow.created_at.desc(), SummaryVersionRow.id.desc())


@dataclass(frozen=True)
class CohortMember:
    document_id: int
    file_name: str
    updated_at: datetime
    status: str
    diagnoses: str
    icd_codes: str
    version_id: int


@dataclass
class Cohort:
    query: CohortQuery
    members: list[CohortMember] = field(default_factory=list)


def find_cohort(store: HistoryStore, query: CohortQuery) -> Cohort:
    with store.reading() as session:
        members = [CohortMember(*row) for row in session.execute(cohort_statement(query))]
    return Cohort(query, members)


def codes_in_history(store: HistoryStore) -> set[str]:
    """Every code a record's latest version holds (a code of a table other than today's still finds its records)."""
    with store.reading() as session:
        found = session.scalars(select(SummaryVersionRow.icd_codes).where(SummaryVersionRow.id.in_(latest_version_ids())))
        return {code for codes in found for code in (codes or "").split()}
