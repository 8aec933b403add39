"""Records longer than the context window: summarize in chunks, then merge deterministically.

Chunks follow the record's own lines (then sentences) so no value is cut in half. The merge adds no model
call and no words: the first stated 主诉, the 现病史 parts in order, and the union of exam items and
diagnoses in order of first appearance.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from inference.errors import GenerationError
from inference.summary_schema import ABSENT, StructuredSummary

_SENTENCE = re.compile(r"(?<=[。；;！？!?])")


def split_record(text: str, fits: Callable[[str], bool]) -> list[str]:
    pieces: list[str] = []
    for line in text.splitlines(keepends=True):
        if fits(line):
            pieces.append(line)
            continue
        for sentence in _SENTENCE.split(line):
            if sentence and not fits(sentence):
                raise GenerationError("病历中有一句话超过上下文长度 / one sentence is longer than the context window")
            if sentence:
                pieces.append(sentence)
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and not fits(current + piece):
            chunks.append(current)
            current = ""
        current += piece
    if current.strip():
        chunks.append(current)
    return chunks


def merge_summaries(parts: list[StructuredSummary]) -> StructuredSummary:
    chief = next((p.chief_complaint for p in parts if p.chief_complaint.strip() not in ("", ABSENT)), ABSENT)
    illness = [p.present_illness for p in parts if p.present_illness.strip() not in ("", ABSENT)]
    exams, seen_exams = [], set()
    diagnoses, seen_diagnoses = [], set()
    for part in parts:
        for item in part.auxiliary_exams:
            key = (item.name, item.value, item.unit)
            if key not in seen_exams:
                seen_exams.add(key)
                exams.append(item)
        for diagnosis in part.diagnoses:
            if diagnosis.name not in seen_diagnoses:
                seen_diagnoses.add(diagnosis.name)
                diagnoses.append(diagnosis)
    return StructuredSummary(chief_complaint=chief, present_illness="".join(illness) or ABSENT,
                             auxiliary_exams=exams, diagnoses=diagnoses)
