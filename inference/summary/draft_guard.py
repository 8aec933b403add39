"""What the model wrote that the record does not say never stays in the draft.

Run on every model draft before anyone sees it. Removed, each with what the model wrote and why (a finding the
doctor sees), and counted against the draft when the review decides whether it comes from the record at all:

- G2 a diagnosis when the record states none; G3 a diagnosis with no support in the record (or in the part it
  was summarized from); G5 a symptom or complaint written as a diagnosis (头痛伴左侧肢体无力进行性加重2天);
- V1 an exam item whose value the record does not give, and the clause of 现病史 that carries such a value;
- G4 a remnant of the prompt's example: a statement closer to the example patient than to its part of the
  record (伴咳嗽咳黄痰 in a record that never says 咳黄痰; 胸部CT 右下肺斑片影);
- U1 a unit the record does not write for a value (血红蛋白 78g/L×10^9/L: the ×10^9/L goes, 78g/L stays).
"""

from __future__ import annotations

import re
from dataclasses import replace

from inference.checks.complaints import stated_as_complaint
from inference.checks.prompt_example import example_name, example_remnant
from inference.checks.units import unit_problem
from inference.record.evidence import Range, Removal, Scopes
from inference.record.grounding import DIAGNOSIS_SUPPORT, diagnosis_support, split_sentences
from inference.record.summary import ABSENT, DIAGNOSIS_CUES, Diagnosis, ExamItem, StructuredSummary
from inference.record.values import Measurement, find_measurements, fold, resolve_parameter, same_measurement

_CLAUSE = re.compile(r"[^，,；;。]*[，,；;。]?")


class _Guard:
    def __init__(self, source: str, scopes: Scopes | None) -> None:
        self.source = source
        self.folded = fold(source)
        self.measurements = find_measurements(source)
        self.scopes = dict(scopes or {})
        self.removals: list[Removal] = []

    def ranges(self, section: str, text: str) -> list[Range]:
        return self.scopes.get((section, text)) or [(0, len(self.source))]

    def part(self, section: str, text: str) -> str:
        return "\n".join(self.source[s:e] for s, e in self.ranges(section, text))

    def remove(self, rule_id: str, section: str, text: str, reason: str) -> None:
        self.removals.append(Removal(rule_id, section, text, reason))

    def remnant(self, section: str, text: str) -> bool:
        piece = example_remnant(text, self.part(section, text))
        if piece is not None:
            self.remove("G4", section, text.strip("，,；;。 "), f"与提示词示例雷同，原文中没有“{piece}”")
        return piece is not None

    def value_found(self, measurement: Measurement, where: list[Range]) -> bool:
        return any(same_measurement(measurement, m) and any(s <= m.start and m.end <= e for s, e in where)
                   for m in self.measurements)

    # -- each section --------------------------------------------------------------------------------------

    def chief_complaint(self, text: str) -> str:
        return ABSENT if text.strip() != ABSENT and self.remnant("chief_complaint", text) else text

    def diagnoses(self, summary: StructuredSummary) -> list[Diagnosis]:
        kept = []
        states_diagnoses = bool(DIAGNOSIS_CUES.search(self.folded))
        for diagnosis in summary.diagnoses:
            name = diagnosis.name
            if not states_diagnoses:
                self.remove("G2", "diagnoses", name, "原文没有给出任何诊断")
            elif stated_as_complaint(name, self.part("diagnoses", name)):
                self.remove("G5", "diagnoses", name, "原文中为症状或主诉，不是诊断")
            elif diagnosis_support(name, self.folded, self.ranges("diagnoses", name)) < DIAGNOSIS_SUPPORT:
                self.remove("G3", "diagnoses", name, "原文中找不到该诊断")
            elif not self.remnant("diagnoses", name):
                kept.append(diagnosis)
        return kept

    def exam_items(self, summary: StructuredSummary) -> list[ExamItem]:
        kept = []
        for item in summary.auxiliary_exams:
            written = item.as_text()
            problem = unit_problem(item, self.part("auxiliary_exams", written))
            if problem is not None:
                source = f"原文为 {problem.record_text}" if problem.record_text else "原文此处没有单位"
                self.remove("U1", "auxiliary_exams", written, f"原文没有这个单位“{problem.added}”（{source}），已删去")
                item = problem.kept
                self.scopes[("auxiliary_exams", item.as_text())] = self.ranges("auxiliary_exams", written)
            where = self.ranges("auxiliary_exams", item.as_text())
            invented = [m for m in find_measurements(item.as_text())
                        if not self.value_found(replace(m, name=item.name,
                                                        parameter=resolve_parameter(item.name, m.unit)), where)]
            if invented:
                self.remove("V1", "auxiliary_exams", item.as_text(), f"原文中找不到该数值：{invented[0].as_text()}")
            elif example_name(item.name, self.part("auxiliary_exams", item.as_text())):
                self.remove("G4", "auxiliary_exams", item.as_text(), f"项目名“{item.name}”取自提示词示例，原文中没有")
            elif not self.remnant("auxiliary_exams", item.as_text()):
                kept.append(item)
        return kept

    def present_illness(self, text: str) -> str:
        if text.strip() == ABSENT:
            return ABSENT
        kept_sentences = []
        for _offset, sentence in split_sentences(text):
            where = self.ranges("present_illness", sentence)
            kept = []
            for clause in (c for c in _CLAUSE.findall(sentence) if c):
                invented = [m for m in find_measurements(clause) if not self.value_found(m, where)]
                if invented:
                    self.remove("V1", "present_illness", clause.strip("，,；;。 "),
                                f"原文中找不到该数值：{invented[0].as_text()}")
                elif not self.remnant("present_illness", clause):
                    kept.append(clause)
            clean = "".join(kept).strip("，,；; ")
            if clean and not re.search(r"[。；;！？!?]$", clean) and re.search(r"[。；;！？!?]$", sentence):
                clean += sentence[-1]
            if clean:
                kept_sentences.append(clean)
                if clean != sentence and ("present_illness", sentence) in self.scopes:
                    self.scopes[("present_illness", clean)] = where
        return "".join(kept_sentences) or ABSENT


def guard_draft(summary: StructuredSummary, source: str,
                scopes: Scopes | None = None) -> tuple[StructuredSummary, list[Removal], Scopes]:
    """The draft without what the record does not say, what was removed, and the scopes of the statements
    as they now read (a 现病史 sentence that lost a clause keeps the part it came from)."""
    guard = _Guard(source, scopes)
    guarded = StructuredSummary(chief_complaint=guard.chief_complaint(summary.chief_complaint),
                                present_illness=guard.present_illness(summary.present_illness),
                                auxiliary_exams=guard.exam_items(summary), diagnoses=guard.diagnoses(summary))
    return guarded, guard.removals, guard.scopes
