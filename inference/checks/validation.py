"""Check a summary against its source record: the one review every path runs (the rules and their ids are
listed in ``checks.findings``). One problem gets one finding: a statement that already carries a finding (S, V,
T, D, N, G2) is not flagged again by F1 or G1; many omitted key values (V2) are one finding with the list."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from inference.checks.complaints import stated_as_complaint
from inference.checks.durations import unstated_durations
from inference.checks.findings import (
    ERROR,
    INFO,
    SEVERITY_ORDER,
    WARNING,
    DiagnosisVocabulary,
    Finding,
    ValidationReport,
    content_statements,
    is_supported,
)
from inference.checks.prompt_example import example_copies
from inference.checks.reading import uncertain_readings
from inference.checks.units import unit_problem
from inference.paths import resources_dir
from inference.record.clinical_terms import expand_terms, find_nonstandard_terms
from inference.record.evidence import UNSUPPORTED_REMOVALS, Range, Removal, RunEvidence, Scopes
from inference.record.grounding import (
    DIAGNOSIS_SUPPORT,
    SUPPORTED,
    SourceIndex,
    SourceSpan,
    Statement,
    diagnosis_support,
    ground_summary,
)
from inference.record.polarity import NEGATION, compare
from inference.record.provenance import Provenance
from inference.record.summary import (
    ABSENT,
    DIAGNOSIS_CUES,
    DIAGNOSIS_SEPARATORS,
    SECTION_HEADINGS,
    ExamItem,
    StructuredSummary,
)
from inference.record.values import (
    VITAL_SIGNS,
    Measurement,
    find_measurements,
    fold,
    implausible,
    is_key,
    resolve_parameter,
    same_measurement,
)
from inference.tsv_files import read_tsv

# A draft is refused when fewer than half of its statements (those removed for lack of support included) are
# supported by the record. Drafts of the record itself copy its wording: on CMB-Clin their supported share
# is far above this (README); the prompt's example patient against any real record scores 0.
MIN_SUPPORTED_SHARE = 0.5
REMOVED = "已从草稿中移除"
GROUP_OMISSIONS_OVER = 3  # more omitted key values than this are one finding with the list behind it

_NEGATION = re.compile(r"(否认|无|未见|未发现|未诉|排除|不伴|没有)([^，,。；;：:\n]{1,40})")
_NEGATION_ITEM_SPLIT = re.compile(r"[、及和与或/]|病史|史")
_OTHER_HEADINGS = re.compile(r"(主诉|现病史|辅助检查|初步诊断|既往史|体格检查|诊断)[:：]")
_OUTSIDE_TEMPLATE = re.compile(r"(建议|治疗方案|医嘱|处理意见|注意事项)[:：]")
_CJK_OR_LATIN = re.compile(r"[\u4e00-\u9fffA-Za-z]")


@lru_cache(maxsize=1)
def allowed_additions() -> frozenset[str]:
    return frozenset(row[0] for row in read_tsv(resources_dir() / "validation" / "faithfulness.tsv", 1))


class _Checker:
    def __init__(self, summary: StructuredSummary, source: str, vocabulary: DiagnosisVocabulary | None,
                 scopes: Scopes | None = None) -> None:
        self.summary = summary
        self.source = source
        index = SourceIndex(source)  # the record is folded, split and scanned for values once per review
        self.folded_source = index.folded
        self.vocabulary = vocabulary
        self.statements = ground_summary(summary, index, scopes)
        self.unchecked = 0
        self.findings: list[Finding] = []
        self.source_measurements = index.measurements
        self.explained: set[tuple[str, int]] = set()  # statements that already carry a finding

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        if finding.index is not None:
            self.explained.add((finding.section, finding.index))

    # -- S: structure ----------------------------------------------------------------------------

    def structure(self) -> None:
        summary = self.summary
        for section in ("chief_complaint", "present_illness"):
            text = getattr(summary, section).strip()
            if not text:
                self.add(Finding("S1", ERROR, section, 0, None,
                                 f"【{SECTION_HEADINGS[section]}】缺失或为空", f"填写内容或写明“{ABSENT}”"))
        for index, diagnosis in enumerate(summary.diagnoses):
            parts = [p for p in DIAGNOSIS_SEPARATORS.split(diagnosis.name.strip()) if p.strip()]
            if len(parts) > 1:
                self.add(Finding("S2", ERROR, "diagnoses", index, (0, len(diagnosis.name)),
                                 f"一条诊断中包含多个诊断：{diagnosis.name}", "每条只写一个诊断：" + " / ".join(parts)))
        for statement in self.statements:
            for pattern, what in ((_OUTSIDE_TEMPLATE, "模板以外的内容"), (_OTHER_HEADINGS, "其他段落的标题")):
                match = pattern.search(statement.text)
                if match and not (statement.section == "present_illness" and match.group(1) in ("既往史", "体格检查")):
                    span = (statement.offset + match.start(), statement.offset + match.end())
                    self.add(Finding("S3", WARNING, statement.section, statement.index, span,
                                     f"【{SECTION_HEADINGS[statement.section]}】中出现{what}：{match.group(0)}",
                                     "删除或移到对应段落"))
                    break
        self._absent_but_recorded()

    def _absent_but_recorded(self) -> None:
        summary, source = self.summary, self.folded_source
        recorded = {
            "chief_complaint": bool(re.search(r"主诉|因[“\"].+?[”\"]", source)),
            "present_illness": bool(re.search(r"现病史|病史|入院", source)),
            "auxiliary_exams": bool(re.search(r"辅助检查|化验|检查[:：]", source)) or any(
                is_key(m) and m.parameter not in VITAL_SIGNS for m in self.source_measurements),
            "diagnoses": bool(re.search(r"诊断[:：]", source)),
        }
        stated_absent = {
            "chief_complaint": summary.chief_complaint.strip() == ABSENT,
            "present_illness": summary.present_illness.strip() == ABSENT,
            "auxiliary_exams": not summary.auxiliary_exams,
            "diagnoses": not summary.diagnoses,
        }
        for section, absent in stated_absent.items():
            if absent and recorded[section]:
                self.add(Finding("S4", WARNING, section, None, None,
                                 f"摘要写【{SECTION_HEADINGS[section]}】{ABSENT}，但原文有相关记载", "核对原文后补充"))

    # -- V: values -------------------------------------------------------------------------------

    def values(self) -> None:
        summary_identities: set[tuple[str, tuple[float, ...], str]] = set()
        for statement, measurement, span in self._summary_measurements():
            summary_identities.add(measurement.identity)
            same_name = self._source_value_named(measurement)
            hint = f"原文为 {self.source[same_name.value_start:same_name.end]}" if same_name else ""
            limit = implausible(measurement)
            if limit is not None:
                self.add(Finding("V3", ERROR, statement.section, statement.index, span,
                                 f"数值不符合生理范围：{measurement.name} {measurement.as_text()}"
                                 f"（{limit.unit} 合理范围 {limit.low:g}–{limit.high:g}）", hint,
                                 self._spans_of(same_name)))
                continue
            if any(same_measurement(measurement, m) and statement.in_scope(m.start, m.end)
                   for m in self.source_measurements):
                continue
            self.add(Finding("V1", ERROR, statement.section, statement.index, span,
                             f"数值在原文中找不到（编造或改动）：{measurement.name} {measurement.as_text()}".replace("  ", " "),
                             hint or "删除或按原文改正", self._spans_of(same_name)))
        for statement in self.statements:
            if statement.section in ("chief_complaint", "present_illness"):
                for duration in unstated_durations(statement.text, self._part(statement.section, statement.index)):
                    self.add(Finding("V6", ERROR, statement.section, statement.index,
                                     (statement.offset + duration.start, statement.offset + duration.end),
                                     f"病程时间在原文中找不到（编造或改动）：{duration.text}", "按原文改正"))
        for item_index, item in enumerate(self.summary.auxiliary_exams):
            self._unit_added(item_index, item)
            numbers = re.findall(r"\d+(?:\.\d+)?", fold(item.value))
            if numbers and not item.unit.strip() and not find_measurements(fold(item.as_text())):
                match = next((m for m in self.source_measurements if [f"{n:g}" for n in m.numbers] ==
                              [f"{float(n):g}" for n in numbers]), None)
                if match is not None:
                    summary_identities.add(match.identity)
                    self.add(Finding("V4", WARNING, "auxiliary_exams", item_index, (0, len(item.as_text())),
                                     f"数值缺少单位：{item.as_text()}", f"原文为 {self.source[match.value_start:match.end]}",
                                     self._spans_of(match)))
        already_cited = {(span.start, span.end) for f in self.findings if f.rule_id in ("V1", "V3", "V4")
                         for span in f.source_spans}
        omitted = [m for m in self.source_measurements if (m.start, m.end) not in already_cited
                   and is_key(m) and m.identity not in summary_identities]
        if len(omitted) > GROUP_OMISSIONS_OVER:
            texts = [self.source[m.start:m.end] for m in omitted]
            self.add(Finding("V2", WARNING, "auxiliary_exams", None, None,
                             f"原文有 {len(omitted)} 个关键数值未出现在摘要中：{'、'.join(texts[:3])} 等",
                             "逐项核对原文，需要的补入摘要", [s for m in omitted for s in self._spans_of(m)], texts))
            return
        for measurement in omitted:
            text = self.source[measurement.start:measurement.end]
            self.add(Finding("V2", WARNING, self._section_for(measurement), None, None,
                         f"原文的关键数值未出现在摘要中：{text}", f"补充 {text}", self._spans_of(measurement)))

    def _ranges(self, section: str, index: int) -> list[Range]:
        """Where in the record the statement may be supported: its part of a long record, else the whole."""
        scope = next((s.scope for s in self.statements if (s.section, s.index) == (section, index)), None)
        return scope or [(0, len(self.source))]

    def _part(self, section: str, index: int) -> str:
        return "\n".join(self.source[a:b] for a, b in self._ranges(section, index))

    def _unit_added(self, index: int, item: ExamItem) -> None:
        if (problem := unit_problem(item, self._part("auxiliary_exams", index))) is None:
            return
        suggestion = f"原文为 {problem.record_text}" if problem.record_text else f"删去单位，写“{problem.kept.as_text()}”"
        self.add(Finding("V5", ERROR, "auxiliary_exams", index, (0, len(item.as_text())),
                         f"单位与原文不符（原文没有“{problem.added}”）：{item.as_text()}", suggestion))

    def _summary_measurements(self) -> list[tuple[Statement, Measurement, tuple[int, int]]]:
        found = []
        for statement in self.statements:
            for measurement in find_measurements(statement.text):
                span = (statement.offset + measurement.start, statement.offset + measurement.end)
                if statement.section == "auxiliary_exams":
                    measurement = _named(measurement, self.summary.auxiliary_exams[statement.index].name)
                found.append((statement, measurement, span))
        return found

    def _source_value_named(self, measurement: Measurement) -> Measurement | None:
        for candidate in self.source_measurements:
            if measurement.parameter and candidate.parameter == measurement.parameter:
                return candidate
            if measurement.name and candidate.name.upper() == measurement.name.upper():
                return candidate
        return None

    def _spans_of(self, measurement: Measurement | None) -> list[SourceSpan]:
        if measurement is None:
            return []
        return [SourceSpan(measurement.start, measurement.end, self.source[measurement.start:measurement.end], 1.0)]

    @staticmethod
    def _section_for(measurement: Measurement) -> str:
        return "present_illness" if measurement.parameter in VITAL_SIGNS else "auxiliary_exams"

    # -- T: terms --------------------------------------------------------------------------------

    def terms(self) -> None:
        stated = [d for d in self.summary.diagnoses if d.name.strip() and d.name.strip() != ABSENT]
        if stated and not DIAGNOSIS_CUES.search(self.folded_source):
            for index, diagnosis in enumerate(self.summary.diagnoses):
                if diagnosis not in stated:
                    continue  # 原文未记载 is how a summary says the record gives no diagnosis
                self.add(Finding("G2", ERROR, "diagnoses", index, (0, len(diagnosis.name)),
                                 f"原文没有给出诊断，摘要中的诊断无原文依据：{diagnosis.name}", f"删除，写“{ABSENT}”"))
            return
        negated = self._negated_phrases()
        for index, diagnosis in enumerate(self.summary.diagnoses):
            name = diagnosis.name.strip()
            if not name or name == ABSENT:
                continue
            negation = self._negation_of(name, negated)
            if negation is not None:
                start, end, cue = negation
                self.add(Finding("T2", ERROR, "diagnoses", index, (0, len(name)),
                                 f"原文否认该诊断（“{cue}”），摘要却列为诊断：{name}", "删除该诊断",
                                 [SourceSpan(start, end, self.source[start:end], 1.0)]))
                continue
            hits = find_nonstandard_terms(name)
            if hits:
                hit = hits[0]
                standard = hit.variant.standard
                in_source = name in self.folded_source or (standard and expand_terms(name) in expand_terms(self.folded_source))
                message = (f"非规范诊断用语：{hit.variant.alias}" +
                           (f"，规范名称为“{standard}”" if standard else f"（{hit.variant.note}）"))
                severity = WARNING
                if not in_source:
                    message += "；原文中未找到该诊断"
                    severity = ERROR
                suggestion = expand_terms(name) if standard else hit.variant.note
                self.add(Finding("T1", severity, "diagnoses", index, (hit.start, hit.end), message, suggestion))
                continue
            if stated_as_complaint(name, self._part("diagnoses", index)):
                self.add(Finding("D1", WARNING, "diagnoses", index, (0, len(name)),
                                 f"初步诊断中这一条是原文的症状或主诉，不是诊断：{name}", "写原文给出的诊断；症状写在主诉或现病史中"))
                continue
            if diagnosis_support(name, self.folded_source, self._ranges("diagnoses", index)) < DIAGNOSIS_SUPPORT:
                self.add(Finding("T4", WARNING, "diagnoses", index, (0, len(name)),
                                 f"原文中找不到该诊断：{name}", "核对原文；原文没有的诊断不写入摘要"))
                continue
            if self.vocabulary is not None and not self.vocabulary.knows(name):
                self.add(Finding("T3", INFO, "diagnoses", index, (0, len(name)),
                                 f"诊断名称未能对应到编码表 {self.vocabulary.name} 中的规范名称：{name}", "核对诊断名称"))

    def _negated_phrases(self) -> list[tuple[int, int, str, str]]:
        """(start, end, cue, item) for each thing the source explicitly denies."""
        phrases = []
        for match in _NEGATION.finditer(self.folded_source):
            for item in _NEGATION_ITEM_SPLIT.split(match.group(2)):
                item = item.strip()
                if len(item) >= 2:
                    phrases.append((match.start(), match.end(), match.group(0), item))
        return phrases

    def _negation_of(self, name: str, negated: list[tuple[int, int, str, str]]) -> tuple[int, int, str] | None:
        core = re.sub(r"(病史|史)$", "", name)
        for start, end, cue, item in negated:
            if core in item or item in core:
                asserted = [m.start() for m in re.finditer(re.escape(core), self.folded_source)
                            if not start <= m.start() < end]
                if not asserted:
                    return start, end, cue
        return None

    # -- N: negation and certainty ------------------------------------------------------------------

    def polarity(self) -> None:
        for statement in self.statements:
            if statement.is_absent_marker or not statement.text.strip() \
                    or (statement.section, statement.index) in self.explained:
                continue
            near = [(span.start, span.end) for span in statement.sources] or statement.scope or []
            disagreements, undecided = compare(statement.text, self.source, near)
            self.unchecked += bool(undecided) and not disagreements
            for disagreement in disagreements[:1]:
                term, found = disagreement.term, disagreement.source
                start, end = disagreement.source_start, disagreement.source_end
                quote = self._clause_around(start, end)
                if disagreement.kind == NEGATION:
                    rule, message = "N1", (f"否定被改变：摘要写“{statement.text.strip()}”，"
                                           f"原文为“{quote.text}”（{term.text}：原文{found.describe()}）")
                else:
                    rule, message = "N2", (f"确定程度被改变：摘要写“{statement.text.strip()}”，原文为“{quote.text}”")
                span = (statement.offset + term.start, statement.offset + term.end)
                self.add(Finding(rule, ERROR, statement.section, statement.index, span, message,
                                 f"按原文改为“{quote.text}”", [quote]))

    def _clause_around(self, start: int, end: int) -> SourceSpan:
        marks = "，,。；;：:\n"
        left = max(self.source.rfind(c, 0, start) for c in marks) + 1
        rights = [i for i in (self.source.find(c, end) for c in marks) if i >= 0]
        right = min(rights) if rights else len(self.source)
        return SourceSpan(left, right, self.source[left:right].strip(), 1.0)

    # -- R: does the draft come from this record at all ------------------------------------------------

    def provenance(self, removals: list[Removal]) -> None:
        copied = example_copies(self.summary, self.folded_source)
        # The example patient comes back whole (its complaint, diagnoses, values); one common diagnosis the
        # doctor typed (2型糖尿病) is not the example patient, and F1/G1 still flag it when the record lacks it.
        if len(copied) >= 2:
            self.add(Finding("R1", ERROR, "chief_complaint", None, None,
                             f"摘要与提示词中的示例病例雷同（{'、'.join(copied[:3])}），不是本病历的摘要",
                             "分段重新生成"))
            return
        content = content_statements(self.statements)
        unsupported_removals = [r for r in removals if r.rule_id in UNSUPPORTED_REMOVALS]
        total = len(content) + len(unsupported_removals)
        supported = sum(is_supported(s) for s in content)
        if total and supported / total < MIN_SUPPORTED_SHARE:
            self.add(Finding("R2", ERROR, "chief_complaint", None, None,
                             f"摘要与原文不符：{total} 条内容中只有 {supported} 条在原文中有依据",
                             "分段重新生成"))

    def removed(self, removals: list[Removal]) -> None:
        for removal in removals:
            severity = INFO if removal.rule_id == "G2" else WARNING
            self.findings.append(Finding(removal.rule_id, severity, removal.section, None, None,
                                         f"{REMOVED}（{removal.reason}）：模型原文为“{removal.text}”",
                                         "核对原文；确有依据时手工补回"))

    # -- F and G: faithfulness and grounding -------------------------------------------------------

    def faithfulness(self) -> None:
        for statement in self.statements:
            if statement.is_absent_marker or (statement.section, statement.index) in self.explained:
                continue
            for start, end in self._novel_spans(statement.text):
                span = (statement.offset + start, statement.offset + end)
                self.add(Finding("F1", WARNING, statement.section, statement.index, span,
                                 f"原文中没有这一用语（可能是改写或新增）：{statement.text[start:end]}",
                                 "照原文用语改写", statement.sources[:1]))

    def _novel_spans(self, text: str) -> list[tuple[int, int]]:
        folded = fold(text)
        measured = [False] * len(folded)
        for measurement in find_measurements(folded):
            for i in range(measurement.value_start, measurement.end):
                measured[i] = True
        covered = list(measured)
        for i in range(len(folded)):  # longest piece (2–12 characters) starting here that the source contains
            for length in range(min(12, len(folded) - i), 1, -1):
                if folded[i:i + length] in self.folded_source:
                    covered[i:i + length] = [True] * length
                    break
        spans, start = [], None
        for i, char in enumerate(folded + " "):
            uncovered = i < len(folded) and not covered[i] and bool(_CJK_OR_LATIN.match(char))
            if uncovered and start is None:
                start = i
            elif not uncovered and start is not None:
                word = folded[start:i]
                if len(word) >= 2 and word not in allowed_additions() and not _only_allowed(word):
                    while start > 0 and folded[start - 1].isdigit():  # 2型糖尿病 is one term, not 2 + 型糖尿病
                        start -= 1
                    spans.append((start, i))
                start = None
        return spans

    def grounding(self) -> None:
        for statement in self.statements:
            key = (statement.section, statement.index)
            if statement.is_absent_marker or key in self.explained or not statement.text.strip():
                continue
            if statement.support < SUPPORTED:
                self.add(Finding("G1", WARNING, statement.section, statement.index, (0, len(statement.text)),
                                 "该内容在原文中找不到依据", "核对原文",  # the support figure is in the statements
                                 statement.sources))


def _only_allowed(word: str) -> bool:
    remaining = word
    for allowed in sorted(allowed_additions(), key=len, reverse=True):
        remaining = remaining.replace(allowed, "")
    return not remaining


def _named(measurement: Measurement, name: str) -> Measurement:
    """An exam item's value takes the item's name (its own text is 'name value unit')."""
    return replace(measurement, name=name, parameter=resolve_parameter(name, measurement.unit))


def validate(summary: StructuredSummary, source: str, vocabulary: DiagnosisVocabulary | None = None,
             evidence: RunEvidence | None = None, provenance: Provenance | None = None) -> ValidationReport:
    """The one review of a summary against its record: every rule, the code table's names (T3) when given, the
    run's evidence, and how sure the OCR was of the lines read from pages (O1). The pipeline, an edit, a reopened
    record and ``medbrief validate`` all call this."""
    evidence = evidence or RunEvidence()
    scopes, removals = evidence.scopes or None, list(evidence.removals)
    checker = _Checker(summary, source, vocabulary, scopes)
    checker.structure()
    checker.values()
    checker.terms()
    checker.polarity()
    checker.faithfulness()
    checker.grounding()
    checker.provenance(removals)
    checker.removed(removals)
    findings = sorted(checker.findings + uncertain_readings(checker.statements, provenance), key=lambda f: (SEVERITY_ORDER[f.severity], f.rule_id))
    return ValidationReport(findings=findings, statements=checker.statements, unchecked=checker.unchecked)
