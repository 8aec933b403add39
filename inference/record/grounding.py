"""Link every summary statement to the source span(s) that support it.

A statement is each sentence of 现病史, the 主诉, each 辅助检查 item and each 初步诊断 entry. Support is
measured on character bigrams: the share of the statement's bigrams found in the chosen source
sentences. Exam items and diagnoses first try an exact anchor (the same value with its unit; the same
diagnosis wording) so the desktop can highlight precisely.

A summary of a long record made in parts says which part each statement came from (``Scopes``): such a
statement is grounded only in its part, so a value that happens to stand in another patient's admission
further down the record does not count as support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from inference.record.clinical_terms import expand_terms
from inference.record.evidence import Range, Scopes
from inference.record.summary import ABSENT, StructuredSummary
from inference.record.values import find_measurements, fold

_SENTENCE_END = re.compile(r"[。；;！？!?\n]")
_NOT_CONTENT = re.compile(r"[\s,，、:：。；;()（）\"“”'‘’\[\]【】{}]")
SUPPORTED = 0.5


@dataclass(frozen=True)
class SourceSpan:
    start: int
    end: int
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "score": round(self.score, 3)}


@dataclass
class Statement:
    section: str  # field name: chief_complaint | present_illness | auxiliary_exams | diagnoses
    index: int  # sentence index in 现病史, item index in lists, 0 for 主诉
    text: str
    offset: int = 0  # start of ``text`` inside its field (sentences of 现病史)
    sources: list[SourceSpan] = field(default_factory=list)
    support: float = 0.0
    scope: list[Range] | None = None  # where in the record it may be supported; None: anywhere

    def in_scope(self, start: int, end: int) -> bool:
        return self.scope is None or any(s <= start and end <= e for s, e in self.scope)

    @property
    def is_absent_marker(self) -> bool:
        return self.text.strip() == ABSENT

    def as_dict(self) -> dict[str, Any]:
        return {"section": self.section, "index": self.index, "text": self.text, "offset": self.offset,
                "support": round(self.support, 3), "supported": self.support >= SUPPORTED or self.is_absent_marker,
                "sources": [s.as_dict() for s in self.sources]}


def split_sentences(text: str) -> list[tuple[int, str]]:
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if text[start:match.end()].strip():
            sentences.append((start, text[start:match.end()]))
        start = match.end()
    if text[start:].strip():
        sentences.append((start, text[start:]))
    return sentences


def statements_of(summary: StructuredSummary) -> list[Statement]:
    statements = [Statement("chief_complaint", 0, summary.chief_complaint)]
    for index, (offset, sentence) in enumerate(split_sentences(summary.present_illness)):
        statements.append(Statement("present_illness", index, sentence, offset))
    statements += [Statement("auxiliary_exams", i, item.as_text()) for i, item in enumerate(summary.auxiliary_exams)]
    statements += [Statement("diagnoses", i, d.name) for i, d in enumerate(summary.diagnoses)]
    return statements


def content(text: str) -> str:
    """A text's words as they are compared: folded, without spaces, punctuation or brackets."""
    return _NOT_CONTENT.sub("", fold(text))


def char_pairs(words: str) -> set[str]:
    """The adjacent character pairs of ``words`` (itself when it is one character): how much of a statement
    stands in a text is the share of its pairs found there."""
    return {words[i:i + 2] for i in range(len(words) - 1)} or ({words} if words else set())


def pair_share(pairs: set[str], text: str) -> float:
    return sum(pair in text for pair in pairs) / len(pairs) if pairs else 0.0


def _bigrams(text: str) -> set[str]:
    return char_pairs(content(text))


class SourceIndex:
    def __init__(self, source: str) -> None:
        self.source = source
        self.folded = fold(source)
        self.sentences = [(offset, sentence, _bigrams(sentence)) for offset, sentence in split_sentences(source)]
        self.measurements = find_measurements(source)

    def ground(self, statement: Statement) -> None:
        if statement.is_absent_marker or not statement.text.strip():
            return
        sentences = [s for s in self.sentences if statement.in_scope(s[0], s[0] + len(s[1]))]
        anchored = self._anchor(statement)
        grams = _bigrams(statement.text)
        if not grams:
            return
        covered: set[str] = set()
        chosen: list[SourceSpan] = []
        if anchored:
            chosen.append(anchored)
            covered |= grams & _bigrams(anchored.text)
        while len(chosen) < 3:
            best = max(sentences, key=lambda s: len((grams - covered) & s[2]), default=None)
            if best is None or not (grams - covered) & best[2]:
                break
            gain = (grams - covered) & best[2]
            if len(gain) < 2 and chosen:
                break
            covered |= gain
            offset, sentence, _ = best
            chosen.append(SourceSpan(offset, offset + len(sentence), sentence, len(gain) / len(grams)))
        statement.sources = chosen
        statement.support = len(covered) / len(grams)

    def _anchor(self, statement: Statement) -> SourceSpan | None:
        text = fold(statement.text).strip()
        if statement.section == "auxiliary_exams":
            mine = find_measurements(text)
            for measurement in self.measurements:
                if mine and measurement.identity == mine[0].identity \
                        and statement.in_scope(measurement.start, measurement.end):
                    span = self.source[measurement.start:measurement.end]
                    return SourceSpan(measurement.start, measurement.end, span, 1.0)
            name = text.split(" ")[0]
            position = self._find(name, statement) if len(name) >= 2 else -1
            if position >= 0:
                return SourceSpan(position, position + len(name), self.source[position:position + len(name)], 0.5)
            return None
        if statement.section in ("diagnoses", "chief_complaint"):
            position = self._find(text, statement)
            if position >= 0 and text:
                return SourceSpan(position, position + len(text), self.source[position:position + len(text)], 1.0)
        return None


    def _find(self, text: str, statement: Statement) -> int:
        position = self.folded.find(text)
        while position >= 0 and not statement.in_scope(position, position + len(text)):
            position = self.folded.find(text, position + 1)
        return position


def ground_summary(summary: StructuredSummary, index: SourceIndex, scopes: Scopes | None = None) -> list[Statement]:
    """Every statement of the summary with its source spans, in its record part where ``scopes`` says."""
    statements = statements_of(summary)
    for statement in statements:
        if scopes:
            statement.scope = scopes.get((statement.section, statement.text))
        index.ground(statement)
    return statements


# A diagnosis counts as stated when this share of its character pairs stands in one sentence of the record
# (高血压3级 against 高血压病3级: 3 of 4). 2型糖尿病 against a record that only says 糖尿病 is 2 of 4: not stated.
DIAGNOSIS_SUPPORT = 0.7


def diagnosis_support(name: str, folded_source: str, where: list[Range]) -> float:
    """The best share of the diagnosis's character pairs found in one sentence of the record within ``where``."""
    core = re.sub(r"[\s()（）\[\]【】?？]", "", fold(name))
    if not core:
        return 0.0
    text = "".join(folded_source[s:e] + "\n" for s, e in where)
    if core in text or expand_terms(core) in expand_terms(text):
        return 1.0
    pairs = char_pairs(core)
    return max((pair_share(pairs, sentence) for _offset, sentence in split_sentences(text)), default=0.0)
