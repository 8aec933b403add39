"""What the model wrote that the record does not say never stays in the draft.

Run on every model draft before anyone sees it: a diagnosis with no support in the record (or in the part
it was summarized from) is removed, whether or not the record states other diagnoses; so is an exam item
whose value the record does not give, and the clause of 现病史 that carries such a value. Each removal is
kept, with what the model wrote, and shown to the doctor as a finding.
"""

from __future__ import annotations

import re
from dataclasses import replace

from inference.record.clinical_terms import expand_terms
from inference.record.evidence import Range, Removal, Scopes
from inference.record.grounding import split_sentences
from inference.record.summary import ABSENT, DIAGNOSIS_CUES, StructuredSummary
from inference.record.values import Measurement, find_measurements, fold, resolve_parameter, same_measurement

# A diagnosis counts as stated when this share of its character pairs stands in one sentence of the record
# (高血压3级 against 高血压病3级: 3 of 4). 2型糖尿病 against a record that only says 糖尿病 is 2 of 4: removed.
DIAGNOSIS_SUPPORT = 0.7
_CLAUSE = re.compile(r"[^，,；;。]*[，,；;。]?")


def guard_draft(summary: StructuredSummary, source: str,
                scopes: Scopes | None = None) -> tuple[StructuredSummary, list[Removal], Scopes]:
    """The draft without what the record does not say, what was removed, and the scopes of the statements
    as they now read (a 现病史 sentence that lost a clause keeps the part it came from)."""
    removals: list[Removal] = []
    scopes = dict(scopes or {})
    folded = fold(source)
    measurements = find_measurements(source)

    def ranges(section: str, text: str) -> list[Range]:
        return scopes.get((section, text)) or [(0, len(source))]

    def value_found(measurement: Measurement, where: list[Range]) -> bool:
        return any(same_measurement(measurement, m) and any(s <= m.start and m.end <= e for s, e in where)
                   for m in measurements)

    diagnoses = []
    states_diagnoses = bool(DIAGNOSIS_CUES.search(folded))
    for diagnosis in summary.diagnoses:
        if not states_diagnoses:
            removals.append(Removal("G2", "diagnoses", diagnosis.name, "原文没有给出任何诊断"))
        elif diagnosis_support(diagnosis.name, folded, ranges("diagnoses", diagnosis.name)) < DIAGNOSIS_SUPPORT:
            removals.append(Removal("G3", "diagnoses", diagnosis.name, "原文中找不到该诊断"))
        else:
            diagnoses.append(diagnosis)

    exams = []
    for item in summary.auxiliary_exams:
        where = ranges("auxiliary_exams", item.as_text())
        invented = [m for m in find_measurements(item.as_text())
                    if not value_found(replace(m, name=item.name, parameter=resolve_parameter(item.name, m.unit)),
                                       where)]
        if invented:
            removals.append(Removal("V1", "auxiliary_exams", item.as_text(),
                                    f"原文中找不到该数值：{invented[0].as_text()}"))
        else:
            exams.append(item)

    kept_sentences = []
    for _offset, sentence in split_sentences(summary.present_illness):
        where = ranges("present_illness", sentence)
        kept = []
        for clause in (c for c in _CLAUSE.findall(sentence) if c):
            invented = [m for m in find_measurements(clause) if not value_found(m, where)]
            if invented:
                removals.append(Removal("V1", "present_illness", clause.strip("，,；;。 "),
                                        f"原文中找不到该数值：{invented[0].as_text()}"))
            else:
                kept.append(clause)
        text = "".join(kept).strip("，,；; ")
        if text and not re.search(r"[。；;！？!?]$", text) and re.search(r"[。；;！？!?]$", sentence):
            text += sentence[-1]
        if text:
            kept_sentences.append(text)
            if text != sentence and ("present_illness", sentence) in scopes:
                scopes[("present_illness", text)] = where
    illness = "".join(kept_sentences) or ABSENT
    if summary.present_illness.strip() == ABSENT:
        illness = ABSENT
    guarded = StructuredSummary(chief_complaint=summary.chief_complaint, present_illness=illness,
                                auxiliary_exams=exams, diagnoses=diagnoses)
    return guarded, removals, scopes


def diagnosis_support(name: str, folded_source: str, where: list[Range]) -> float:
    """The best share of the diagnosis's character pairs found in one sentence of the record within ``where``."""
    core = re.sub(r"[\s()（）\[\]【】?？]", "", fold(name))
    if not core:
        return 0.0
    text = "".join(folded_source[s:e] + "\n" for s, e in where)
    if core in text or expand_terms(core) in expand_terms(text):
        return 1.0
    pairs = {core[i:i + 2] for i in range(len(core) - 1)} or {core}
    best = 0.0
    for _offset, sentence in split_sentences(text):
        best = max(best, sum(p in sentence for p in pairs) / len(pairs))
    return best
