"""Long records in parts: split at the record's own section headings under a token budget, and fuse the
parts' summaries without new words.

A record is cut first where a section begins (the headings are one list in ``resources/record_sections.txt``),
then, inside a section longer than the budget, at line and sentence ends, so no value is cut in half. The
fusion adds no model call: the first stated 主诉, the 现病史 parts in order, and the union of exam items and
diagnoses in order of first appearance. It also says which part of the record each statement came from,
so the checks look for its support there and not in another patient's admission further down.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from inference.errors import GenerationError
from inference.paths import resources_dir
from inference.record.evidence import Scopes
from inference.record.grounding import split_sentences
from inference.record.summary import ABSENT, StructuredSummary

_SENTENCE = re.compile(r"(?<=[。；;！？!?])")
_NUMBERING = r"[ \t\u3000]*(?:[一二三四五六七八九十]+[、.．]|[（(]?\d{1,2}[)）.．、]|[（(][一二三四五六七八九十]+[)）])?[ \t\u3000]*"


@dataclass(frozen=True)
class RecordPart:
    index: int  # 1-based
    start: int  # character offsets in the record
    end: int
    text: str
    headings: tuple[str, ...]  # the section headings this part begins or contains


@lru_cache(maxsize=1)
def section_headings() -> tuple[str, ...]:
    lines = (resources_dir() / "record_sections.txt").read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def _heading_pattern() -> re.Pattern[str]:
    names = "|".join(re.escape(h) for h in sorted(section_headings(), key=len, reverse=True))
    return re.compile(rf"^{_NUMBERING}(?P<heading>{names})(?=[:：\s]|$)", re.MULTILINE)


def sections(text: str) -> list[tuple[int, str]]:
    """(start, heading) of every section the record marks; the text before the first is its own section."""
    found = [(m.start(), m.group("heading")) for m in _heading_pattern().finditer(text)]
    if not found or found[0][0] > 0:
        found.insert(0, (0, ""))
    return found


def split_into_parts(text: str, count_tokens: Callable[[str], int], budget: int) -> list[RecordPart]:
    """Consecutive pieces of ``text`` (joined, they are the record) of at most ``budget`` tokens each."""
    starts = sections(text)
    pieces: list[tuple[int, int, str]] = []  # (start, end, heading)
    for i, (start, heading) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        if count_tokens(text[start:end]) <= budget:
            pieces.append((start, end, heading))
        else:
            pieces += [(s, e, heading if s == start else "") for s, e in _split_section(text, start, end,
                                                                                           count_tokens, budget)]
    parts: list[RecordPart] = []
    current: list[tuple[int, int, str]] = []
    used = 0
    for start, end, heading in pieces:
        tokens = count_tokens(text[start:end])
        if current and used + tokens > budget:
            parts.append(_part(text, len(parts) + 1, current))
            current, used = [], 0
        current.append((start, end, heading))
        used += tokens
    if current:
        parts.append(_part(text, len(parts) + 1, current))
    return [p for p in parts if p.text.strip()] or [RecordPart(1, 0, len(text), text, ())]


def _part(text: str, index: int, pieces: list[tuple[int, int, str]]) -> RecordPart:
    start, end = pieces[0][0], pieces[-1][1]
    return RecordPart(index, start, end, text[start:end], tuple(h for _, _, h in pieces if h))


def _split_section(text: str, start: int, end: int, count_tokens: Callable[[str], int],
                   budget: int) -> list[tuple[int, int]]:
    """Lines, then sentences, of one over-long section, packed under the budget."""
    units: list[tuple[int, int]] = []
    position = start
    for line in text[start:end].splitlines(keepends=True):
        if count_tokens(line) <= budget:
            units.append((position, position + len(line)))
        else:
            offset = position
            for sentence in _SENTENCE.split(line):
                if sentence and count_tokens(sentence) > budget:
                    raise GenerationError("病历中有一句话超过分段长度 / one sentence is longer than a record part")
                if sentence:
                    units.append((offset, offset + len(sentence)))
                    offset += len(sentence)
        position += len(line)
    packed: list[tuple[int, int]] = []
    used = 0
    for unit_start, unit_end in units:
        tokens = count_tokens(text[unit_start:unit_end])
        if packed and used + tokens <= budget:
            packed[-1] = (packed[-1][0], unit_end)
            used += tokens
        else:
            packed.append((unit_start, unit_end))
            used = tokens
    return packed


def fuse(drafts: list[tuple[RecordPart, StructuredSummary]]) -> tuple[StructuredSummary, Scopes]:
    """One summary from the parts' summaries, and the record ranges each statement may be checked in."""
    scopes: Scopes = {}

    def note(section: str, text: str, part: RecordPart) -> None:
        ranges = scopes.setdefault((section, text), [])
        if (part.start, part.end) not in ranges:
            ranges.append((part.start, part.end))

    chief = ABSENT
    illness: list[str] = []
    exams, diagnoses = [], []
    for part, summary in drafts:
        if chief == ABSENT and summary.chief_complaint.strip() not in ("", ABSENT):
            chief = summary.chief_complaint
        if chief == summary.chief_complaint:
            note("chief_complaint", chief, part)
        text = summary.present_illness.strip()
        if text and text != ABSENT:
            if not re.search(r"[。；;！？!?]$", text):
                text += "。"  # a part's last sentence must not run into the next part's first
            illness.append(text)
            for _offset, sentence in split_sentences(text):
                note("present_illness", sentence, part)
        for item in summary.auxiliary_exams:
            if all((e.name, e.value, e.unit) != (item.name, item.value, item.unit) for e in exams):
                exams.append(item)
            note("auxiliary_exams", item.as_text(), part)
        for diagnosis in summary.diagnoses:
            if all(d.name != diagnosis.name for d in diagnoses):
                diagnoses.append(diagnosis)
            note("diagnoses", diagnosis.name, part)
    fused = StructuredSummary(chief_complaint=chief, present_illness="".join(illness) or ABSENT,
                              auxiliary_exams=exams, diagnoses=diagnoses)
    return fused, scopes
