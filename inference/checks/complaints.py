"""A symptom or complaint written as a diagnosis: 头痛伴左侧肢体无力进行性加重2天 in 初步诊断, where the record has
it as the chief complaint. It is not a diagnosis a coder can code (it came back R51): the draft guard takes it
out of 初步诊断, the review flags one a doctor typed (D1)."""

from __future__ import annotations

import re

from inference.checks.durations import DURATION
from inference.record.grounding import char_pairs, content, pair_share
from inference.record.summary import DIAGNOSIS_CUES
from inference.record.values import fold

_COMPLAINT = re.compile(r"主诉[)）]?\s*[:：]?\s*\n?\s*([^\n。；]{2,60})|因[“\"]([^”\"]{2,60})[”\"]")
COMPLAINT_OVERLAP = 0.8
DIAGNOSIS_REACH = 80  # characters before a mention where a cue (诊断：1. … 2. …) still makes it a diagnosis


def chief_complaints(record: str) -> list[str]:
    """The complaints the record writes: after 主诉 (on its line or the next), or in 因“…”入院."""
    return [content(a or b) for a, b in _COMPLAINT.findall(fold(record))]


def stated_as_complaint(name: str, record_part: str) -> bool:
    """The diagnosis entry is a symptom or complaint: it carries a duration, or it is (nearly all of) the
    record's chief complaint and the record never states it after a diagnosis cue (诊断, 印象, 考虑为 …)."""
    core = content(name)
    if not core:
        return False
    if DURATION.search(core):  # a course in time is a complaint's, never a diagnosis's name
        return True
    pairs = char_pairs(core)
    if not any(pair_share(pairs, complaint) >= COMPLAINT_OVERLAP for complaint in chief_complaints(record_part)):
        return False
    text = content(record_part)
    return not any(DIAGNOSIS_CUES.search(text[max(0, m.start() - DIAGNOSIS_REACH):m.start()])
                   for m in re.finditer(re.escape(core), text))
