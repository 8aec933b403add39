"""The review of a summary written with a template: every rule of the one review (``validation``) on the
template's text, values and diagnoses sections, and the checks of the kinds the four sections do not have.

A template's sections are reviewed as the four sections' kinds are: its text sections as 现病史 (values,
durations, negation and certainty, paraphrase, support), its values sections as 辅助检查 (invented, implausible
or unit-less values, units the record does not write), its diagnoses sections as 初步诊断. The rules that are
about the four-section layout itself (S1, S3, S4: a heading missing or misplaced; V2: a key value left out, which
a handover leaves out on purpose) are not applied. Besides them:

  M1 a drug the record does not name (error)
  M2 a dose, route or frequency the record does not write with that drug (error: an invented or changed dose)
  V7 a date the record does not write (error)
  L1 a section longer than the template allows (warning)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from inference.checks.findings import ERROR, SEVERITY_ORDER, WARNING, DiagnosisVocabulary, Finding, ValidationReport
from inference.checks.validation import REMOVED, validate
from inference.record.evidence import RunEvidence
from inference.record.grounding import SourceSpan, Statement, split_sentences
from inference.record.polarity import compare
from inference.record.provenance import Provenance
from inference.record.summary import ABSENT, ExamItem
from inference.record.values import find_measurements, fold, resolve_parameter
from inference.templates.content import AnySummary, DatedEvent, Medication, TemplatedSummary

_NOT_APPLIED = ("S1", "S3", "S4", "V2")
# A dose is never a concentration per litre, a percentage, a pressure or a rate: such a "medication" is a test
# result (NT-proBNP 4500 pg/mL) written into the orders.
_TEST_UNIT = re.compile(r"/\s*[mμnp]?[lL]$|^%$|mmHg|次/分|℃|bpm")
NEGATIVE_VALUES = frozenset({"无", "阴性", "未见", "未见异常", "否认", "没有", "未闻及", "未触及", "-", "(-)", "（-）"})
DRUG_WINDOW = 60  # a dose stands with its drug when it is written within this many characters after it
_DATE = re.compile(r"(?:(?P<year>\d{4})\s*[-/.年]\s*(?P<month>\d{1,2})\s*[-/.月]\s*(?P<day>\d{1,2})\s*日?"
                   r"|(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号])")


@dataclass(frozen=True)
class DateMention:
    start: int
    end: int
    year: int | None
    month: int
    day: int


def find_dates(text: str) -> list[DateMention]:
    """Calendar dates as records write them: 2023-05-01, 2023年5月1日, 2023.5.1, 5月1日."""
    found = []
    for match in _DATE.finditer(fold(text)):
        year = match.group("year")
        month, day = (match.group("month"), match.group("day")) if year else (match.group("m"), match.group("d"))
        if 1 <= int(month) <= 12 and 1 <= int(day) <= 31:
            found.append(DateMention(match.start(), match.end(), int(year) if year else None, int(month), int(day)))
    return found


def date_stated(date: DateMention, source_dates: list[DateMention]) -> bool:
    """The record writes this date (a date without its year matches the same month and day in any year)."""
    return any((d.month, d.day) == (date.month, date.day) and (date.year is None or d.year in (None, date.year))
               for d in source_dates)


def compact_text(text: str) -> str:
    return re.sub(r"\s+", "", fold(text)).lower()


def medication_problem(medication: Medication, source: str) -> tuple[str, str, str] | None:
    """(rule, field, message) when the record does not name the drug or the item is a test result (M1), or the
    record does not write one of the dose, route and frequency with the drug (M2); None when everything stands
    in the record with the drug."""
    compact, drug = compact_text(source), compact_text(medication.drug)
    starts = [m.start() for m in re.finditer(re.escape(drug), compact)] if drug else []
    if not starts:
        return "M1", "drug", f"药名在原文中找不到：{medication.drug}"
    measured = find_measurements(fold(f"{medication.drug} {medication.dose}"))
    if any(_TEST_UNIT.search(m.unit) or resolve_parameter(medication.drug, m.unit) for m in measured):
        return "M1", "drug", f"这是检查结果，不是用药：{medication.as_text()}"
    windows = [compact[s:s + len(drug) + DRUG_WINDOW] for s in starts]
    for name, label in (("dose", "剂量"), ("route", "用法"), ("frequency", "频次")):
        value = compact_text(getattr(medication, name))
        if value and not any(value in window for window in windows):
            return "M2", name, f"{label}与原文不符：原文中{medication.drug}后没有“{getattr(medication, name)}”"
    return None


@dataclass(frozen=True)
class _Place:
    section: str
    index: int
    offset: int  # subtracted from a span in the projected 现病史


class _Projection:
    """The way back from the four sections' review of a ``FourSectionView`` to the template's sections."""

    def __init__(self, summary: TemplatedSummary) -> None:
        view = summary.four_sections()
        self.classic, self.text_starts, self.items = view.classic, view.text_starts, view.items
        self.sentences = split_sentences(self.classic.present_illness)

    def place(self, section: str, index: int | None) -> _Place | None:
        if index is None:
            return None
        if section != "present_illness":
            found = self.items.get((section, index))
            return _Place(found[0], found[1], 0) if found else None
        if index >= len(self.sentences) or not self.text_starts:
            return None
        offset = self.sentences[index][0]
        start, section_id = max((s for s in self.text_starts if s[0] <= offset), default=(0, ""))
        local = sum(1 for o, _ in self.sentences if start <= o < offset)
        return _Place(section_id, local, start)


def review_templated(summary: TemplatedSummary, source: str, vocabulary: DiagnosisVocabulary | None = None,
                     evidence: RunEvidence | None = None, provenance: Provenance | None = None) -> ValidationReport:
    """The review of a template's summary against its record (the pipeline, an edit, a reopened record)."""
    projection = _Projection(summary)
    classic = validate(projection.classic, source, vocabulary, evidence, provenance)
    first = summary.template.sections[0].id
    headings = summary.template.headings
    findings = []
    for finding in classic.findings:
        if finding.message.startswith(REMOVED):  # the guard's removals carry the template's section already
            findings.append(finding)
            continue
        if finding.rule_id in _NOT_APPLIED:
            continue
        if finding.rule_id in ("R1", "R2"):
            findings.append(replace(finding, section=first))
            continue
        place = projection.place(finding.section, finding.index)
        if place is None:
            continue
        span = finding.span
        if span is not None and finding.section == "present_illness":
            span = (span[0] - place.offset, span[1] - place.offset)
        message = finding.message.replace("初步诊断中", f"{headings[place.section]}中")
        findings.append(replace(finding, section=place.section, index=place.index, span=span, message=message))
    statements = []
    for statement in classic.statements:
        place = projection.place(statement.section, statement.index)
        if place is not None:
            statements.append(replace(statement, section=place.section, index=place.index,
                                      offset=statement.offset - place.offset))
    statements += _kind_statements(summary, source)
    findings += _kind_findings(summary, source)
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.rule_id))
    return ValidationReport(findings=findings, statements=statements, unchecked=classic.unchecked)


def denied_finding(item: ExamItem, source: str) -> str | None:
    """The record's words when an item says a finding is absent (颈静脉怒张 无) that the record states as present
    (颈静脉怒张), or the other way round; None otherwise."""
    if item.value.strip() not in NEGATIVE_VALUES:
        return None
    disagreements, _undecided = compare(f"无{item.name}", source, [])
    if not disagreements:
        return None
    first = disagreements[0]
    return source[first.source_start:first.source_end]


def _kind_statements(summary: TemplatedSummary, source: str) -> list[Statement]:
    """Medications and dates as statements, each with where the record writes it."""
    folded, statements = fold(source), []
    for spec in summary.template.sections:
        for index, item in enumerate(summary.items(spec.id)):
            if isinstance(item, (Medication, DatedEvent)):
                key = item.drug if isinstance(item, Medication) else item.date
                position = folded.find(fold(key))
                sources = [SourceSpan(position, position + len(key), source[position:position + len(key)], 1.0)] \
                    if position >= 0 and key else []
                statements.append(Statement(spec.id, index, item.as_text(), 0, sources, 1.0 if sources else 0.0))
    return statements


def _kind_findings(summary: TemplatedSummary, source: str) -> list[Finding]:
    findings: list[Finding] = []
    source_dates = find_dates(source)
    for spec in summary.template.sections:
        text = summary.text(spec.id)
        if len(text) > spec.char_bound:
            findings.append(Finding("L1", WARNING, spec.id, None, None,
                                    f"【{spec.heading}】{len(text)} 字，超过模板的 {spec.char_bound} 字", "精简"))
        for index, item in enumerate(summary.items(spec.id)):
            if isinstance(item, ExamItem) and (written := denied_finding(item, source)) is not None:
                findings.append(Finding("N1", ERROR, spec.id, index, (0, len(item.as_text())),
                                        f"否定被改变：摘要写“{item.as_text()}”，原文为“{written}”", f"按原文改为“{written}”"))
            if isinstance(item, Medication) and (problem := medication_problem(item, source)) is not None:
                rule, _field, message = problem
                findings.append(Finding(rule, ERROR, spec.id, index, (0, len(item.as_text())), message,
                                        "按原文改正或删除"))
            if isinstance(item, DatedEvent):
                dates = find_dates(item.date)
                if (dates and not date_stated(dates[0], source_dates)) or \
                        (not dates and compact_text(item.date) not in compact_text(source)):
                    findings.append(Finding("V7", ERROR, spec.id, index, (0, len(item.date)),
                                            f"日期在原文中找不到（编造或改动）：{item.date}", "按原文改正"))
        if spec.kind == "text":
            for index, (offset, sentence) in enumerate(split_sentences(text if text != ABSENT else "")):
                for date in find_dates(sentence):
                    if not date_stated(date, source_dates):
                        findings.append(Finding("V7", ERROR, spec.id, index, (offset + date.start, offset + date.end),
                                                f"日期在原文中找不到（编造或改动）：{fold(sentence)[date.start:date.end]}",
                                                "按原文改正"))
    return findings


def review_of(summary: AnySummary, source: str, vocabulary: DiagnosisVocabulary | None = None,
              evidence: RunEvidence | None = None, provenance: Provenance | None = None) -> ValidationReport:
    """The one review of any summary: the four sections' (``validate``), or a template's."""
    if isinstance(summary, TemplatedSummary):
        return review_templated(summary, source, vocabulary, evidence, provenance)
    return validate(summary, source, vocabulary, evidence, provenance)
