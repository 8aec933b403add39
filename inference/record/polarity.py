"""Polarity and certainty of clinical statements: 颈静脉怒张 against 无颈静脉怒张, 肺结核 against 肺结核待排.

Chinese records mark polarity with cues inside a clause (the text between ，。；：): a cue before a term
(无 / 否认 / 未闻及 …, or 可闻及 / 伴 / 出现 …) rules it until a later cue in the same clause; a cue right
after a term or a 、-list of terms (阴性 / (-) / 待排 / ？) rules the list. The cues are one list in
``resources/validation/polarity.tsv``. A statement's term is compared with every mention of the same term
in the record: a flip is reported only where no mention says it the statement's way; a record that says
it both ways (无发热 on admission, 发热 on day 3) is left to the doctor and counted as unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from inference.paths import resources_dir
from inference.record.summary import ABSENT
from inference.record.values import find_measurements, fold
from inference.tsv_files import read_tsv

NEGATION, AFFIRMATION, UNCERTAIN, PLAIN = "negation", "affirmation", "uncertain", "plain"
_CLAUSE_END = "，,。；;：:\n"
_LIST_JOIN = "、及和与或/"
_MIN_TERM = 2


@dataclass(frozen=True)
class Cue:
    text: str
    kind: str
    position: str  # before | after


@dataclass(frozen=True)
class Polarity:
    negated: bool
    uncertain: bool

    def describe(self) -> str:
        return ("否定" if self.negated else "肯定") + ("（不确定）" if self.uncertain else "")


@dataclass(frozen=True)
class Term:
    start: int
    end: int
    text: str
    polarity: Polarity


@lru_cache(maxsize=1)
def cues() -> tuple[Cue, ...]:
    rows = read_tsv(resources_dir() / "validation" / "polarity.tsv", 3)
    return tuple(sorted((Cue(fold(text), kind, position) for text, kind, position in rows),
                        key=lambda c: -len(c.text)))


@lru_cache(maxsize=1)
def _cue_pattern() -> re.Pattern[str]:
    return re.compile("|".join(re.escape(c.text) for c in cues()))


def _cue_matches(folded: str) -> list[tuple[int, int, Cue]]:
    by_text: dict[str, list[Cue]] = {}
    for cue in cues():
        by_text.setdefault(cue.text, []).append(cue)
    found = []
    for match in _cue_pattern().finditer(folded):
        for cue in by_text[match.group(0)]:
            found.append((match.start(), match.end(), cue))
    return found


def _clause(folded: str, start: int, end: int) -> tuple[int, int]:
    left = max(folded.rfind(c, 0, start) for c in _CLAUSE_END) + 1
    rights = [i for i in (folded.find(c, end) for c in _CLAUSE_END) if i >= 0]
    return left, min(rights) if rights else len(folded)


def _polarity(folded: str, start: int, end: int) -> Polarity:
    clause_start, clause_end = _clause(folded, start, end)
    negated = uncertain = False
    before = [(s, e, c) for s, e, c in _cue_matches(folded[clause_start:start]) if c.position == "before"]
    if before:
        last = max(before, key=lambda m: (m[1], m[1] - m[0]))[2]  # the cue nearest the term rules it
        negated = last.kind == NEGATION
        uncertain = last.kind == UNCERTAIN
    after = folded[end:clause_end]
    tail = re.match(rf"^(?:[{_LIST_JOIN}][^{_LIST_JOIN}]{{1,14}}?)*?\s*[均呈为]?\s*", after)
    rest = after[tail.end():] if tail else after
    for cue in cues():
        if cue.position == "after" and rest.startswith(cue.text):
            if cue.kind == NEGATION:
                negated = True
            elif cue.kind == AFFIRMATION:
                negated = False
            elif cue.kind == UNCERTAIN:
                uncertain = True
            break
    return Polarity(negated, uncertain)


def terms_of(text: str) -> list[Term]:
    """The cue-free fragments of a statement (2+ characters, not a bare value), with their polarity."""
    folded = fold(text)
    blanked = list(folded)
    for start, end, _cue in _cue_matches(folded):
        blanked[start:end] = [" "] * (end - start)
    for measurement in find_measurements(folded):
        blanked[measurement.value_start:measurement.end] = [" "] * (measurement.end - measurement.value_start)
    terms = []
    for match in re.finditer(rf"[^\s{re.escape(_CLAUSE_END + _LIST_JOIN)}()（）\[\]【】\"“”'‘’\d.%]+",
                             "".join(blanked)):
        term = match.group(0)
        if len(term) >= _MIN_TERM and term != ABSENT and re.search(r"[\u4e00-\u9fffA-Za-z]{2}", term):
            terms.append(Term(match.start(), match.end(), text[match.start():match.end()],
                              _polarity(folded, match.start(), match.end())))
    return terms


@dataclass(frozen=True)
class Disagreement:
    term: Term
    source: Polarity
    source_start: int
    source_end: int

    @property
    def kind(self) -> str:
        return NEGATION if self.term.polarity.negated != self.source.negated else UNCERTAIN


class _Mentions:
    """Where a term stands in the record and what polarity it has there: written whole (颈静脉怒张), or with
    a cue inside it (双下肢无水肿 is a mention of 双下肢水肿, denied)."""

    def __init__(self, source: str) -> None:
        self.folded = fold(source)
        self._inner: list[tuple[int, int, Cue]] = [m for m in _cue_matches(self.folded) if m[2].kind != PLAIN]
        keep = [True] * len(self.folded)
        for start, end, _cue in self._inner:
            keep[start:end] = [False] * (end - start)
        self._positions = [i for i, kept in enumerate(keep) if kept]
        self._stripped = "".join(self.folded[i] for i in self._positions)

    def of(self, needle: str) -> dict[tuple[int, int], Polarity]:
        found = {(m.start(), m.end()): _polarity(self.folded, m.start(), m.end())
                 for m in re.finditer(re.escape(needle), self.folded)}
        for match in re.finditer(re.escape(needle), self._stripped):
            start = self._positions[match.start()]
            end = self._positions[match.end() - 1] + 1
            inside = [c for s, e, c in self._inner if start < s and e < end]
            if end - start == len(needle) or not inside:
                continue
            kind = inside[-1].kind
            outer = _polarity(self.folded, start, end)
            found[(start, end)] = Polarity(kind == NEGATION, kind == UNCERTAIN or outer.uncertain)
        return found


def compare(statement: str, source: str, near: list[tuple[int, int]]) -> tuple[list[Disagreement], int]:
    """Terms of ``statement`` whose polarity or certainty no mention in the source shares, and how many
    terms the source leaves undecided (it says it both ways). ``near``: the statement's source sentences,
    whose mention is the one cited."""
    mentions = _Mentions(source)
    disagreements, undecided = [], 0
    for term in terms_of(statement):
        polarities = mentions.of(fold(term.text))
        if not polarities:
            continue
        local = [span for span in polarities if any(s <= span[0] < e for s, e in near)]
        if term.polarity in polarities.values():
            agrees_nearby = bool(local) and all(polarities[span] == term.polarity for span in local)
            undecided += len(set(polarities.values())) > 1 and not agrees_nearby
            continue
        start, end = (local or sorted(polarities))[0]
        disagreements.append(Disagreement(term, polarities[(start, end)], start, end))
    return disagreements, undecided
