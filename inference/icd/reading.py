"""How a coder reads a diagnosis against the code table: what the ranked candidates of the lookup become before
anyone is shown them.

Three readings, each from the table's own structure or from rules a coder reads and edits:

1. **One disease stays one code.** ICD-10 names a condition with its manifestation in one title — 2型糖尿病伴有肾
   的并发症, 胆囊结石伴有急性胆囊炎, 高血压心脏病伴有（充血性）心力衰竭 — and states the opposite as 不伴有.
   A wording that states both a title's condition and what it is "with" (2型糖尿病肾病, 胆囊结石伴急性胆囊炎) is
   coded to that title, however the lookup ranked it; a title "without" what the wording states (胆囊结石不伴有
   胆囊炎) is never offered. How a manifestation is worded on a ward (视网膜病变 for 眼的并发症) is in
   ``resources/icd/manifestation_words.tsv``.
2. **Detail the table has is kept.** A stage, a type, a grade or a course the wording states (5期, 1型, 持续性)
   takes the code to the title that states it too, within the categories the lookup proposed (慢性肾脏病5期 →
   N18.5, not N18.9).
3. **Chapter sense.** Words that look like another chapter's (急性肾损伤 is acute renal failure, not an injury;
   肝硬化 is K74.6, not K74.1 hepatic sclerosis) follow ``resources/icd/chapter_sense.tsv``: which codes a wording
   never takes, and which it takes.

Each reading that changes the list says so in the candidate's ``match`` (``coder_rule (…)``): the panel shows it
as the reason the code was proposed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from inference.icd.learned import normalize_text
from inference.icd.precision import children
from inference.icd.retrieval import Candidate
from inference.icd.rules_file import parse_rules
from inference.icd.table import IcdEntry, IcdTable
from inference.paths import resources_dir
from inference.record.clinical_terms import expand_terms
from inference.record.values import arabic_numerals

COMBINATION, DETAIL, SENSE = "coder_rule_combination", "coder_rule_detail", "coder_rule_sense"
_WITH = re.compile(r"(不伴有|不伴|伴有|伴)")
# What a title's condition and manifestation carry besides their words. A condition keeps 其他特指的 (E13 其他特指
# 的糖尿病 is not what 糖尿病 states); a manifestation does not (伴有其他特指的并发症 states nothing).
_HEAD_NOISE = re.compile(r"[（(][^）)]*[）)]|慢性或未特指的|未特指的|未特指|[的，,:：、\s]$|[，,:：、\s]")
_NOISE = re.compile(r"[（(][^）)]*[）)]|慢性或未特指的|未特指的|未特指|其他特指的|其他的|其他|[的，,:：、\s]")
_COMPLICATIONS = re.compile(r"(并发症|疾患|情况)$")
_ROMAN = {"IV": "4", "III": "3", "II": "2", "I": "1", "V": "5"}
_DETAIL = re.compile(r"([0-9]|IV|III|II|I|V)(期|型|级|度)|(急性|慢性|阵发|持续|永久)")
_CANDIDATE_CATEGORIES = 5  # categories of the lookup's top candidates a stated detail is looked for in
_MIN_HEAD = 2  # characters of a title's condition that must be stated
_SAME_CONDITION = 70  # rapidfuzz ratio: another category's title names the wording's condition


def _core(text: str) -> str:
    return _COMPLICATIONS.sub("", _NOISE.sub("", normalize_text(text)))


def _head_core(text: str) -> str:
    return _HEAD_NOISE.sub("", normalize_text(text))


@dataclass(frozen=True)
class _Titled:
    """A table title that names a condition with (or without) something: 胆囊结石 | 伴有 | 急性胆囊炎."""

    code: str
    name: str
    head: str  # the condition, as its core words
    tail: str  # what it is with, as its core words ("" when the title says only 并发症)
    without: bool


@lru_cache(maxsize=1)
def manifestation_words() -> dict[str, tuple[str, ...]]:
    """A title's manifestation word → how wards write it (眼 → 视网膜|白内障|眼)."""
    rows = parse_rules(resources_dir() / "icd" / "manifestation_words.tsv", 2, "ICD 并发症用词表",
                       lambda row: (row[0], tuple(word for word in row[1].split("|") if word)))
    return dict(rows)


@dataclass(frozen=True)
class SenseRule:
    wording: re.Pattern[str]
    unless: re.Pattern[str] | None
    never: re.Pattern[str] | None
    prefer: str
    reason: str

    def applies(self, wording: str) -> bool:
        return bool(self.wording.search(wording)) and not (self.unless and self.unless.search(wording))


def _sense_rule(row: list[str]) -> SenseRule:
    wording, unless, never, prefer, reason = row
    if not wording or not reason or not (never or prefer):
        raise ValueError("a row needs a wording, a reason, and codes it never takes or one it takes")
    return SenseRule(re.compile(wording), re.compile(unless) if unless else None,
                     re.compile(never) if never else None, prefer, reason)


@lru_cache(maxsize=1)
def sense_rules() -> tuple[SenseRule, ...]:
    return parse_rules(resources_dir() / "icd" / "chapter_sense.tsv", 5, "ICD 词义规则", _sense_rule)


class TableReading:
    """The titles of one table that name a condition with something (or without it)."""

    def __init__(self, table: IcdTable) -> None:
        self.table = table
        self.titled: list[_Titled] = []
        # The lookup and the wording step ask about the same strings: each is read once.
        self.stated = lru_cache(maxsize=4096)(self._stated)
        for entry in table.lookup_entries():
            if entry.level == "morphology":
                continue
            parts = _WITH.split(normalize_text(entry.name), maxsplit=1)
            if len(parts) == 3:
                head, word, tail = parts
                if len(_head_core(head)) >= _MIN_HEAD:
                    self.titled.append(_Titled(entry.code, entry.name, _head_core(head), _core(tail),
                                               word.startswith("不")))

    def _stated(self, wording: str) -> tuple[list[_Titled], list[_Titled]]:
        """The titles whose condition and manifestation the wording both states (most specific first), and the
        titles "without" something the wording states."""
        with_titles, contradicted = [], []
        for title in self.titled:
            end = _find_loosely(wording, title.head)
            if end < 0:
                continue
            rest = wording[end:]
            if title.without:
                if title.tail and _states(rest, title.tail):
                    contradicted.append(title)
            elif title.tail and _states(rest, title.tail):
                with_titles.append(title)
        with_titles.sort(key=lambda t: (-(len(t.head) + len(t.tail)), t.code))
        if with_titles:  # a stated manifestation contradicts 不伴有并发症 of the same condition …
            heads = {t.head for t in with_titles}
            contradicted += [t for t in self.titled if t.without and t.head in heads and not t.tail]
            best = with_titles[0]  # … and a title that says less of it (糖尿病伴有肾 where 2型 is stated)
            contradicted += [t for t in with_titles[1:] if t.tail == best.tail and t.head != best.head
                             and t.head in best.head]
        return with_titles, contradicted


def _find_loosely(wording: str, head: str) -> int:
    """Where the condition ends in the wording: as written, or with one more character inside it (胆管结石 in
    胆总管结石) when it has no number that could differ (1型 is not 2型). -1 when the wording does not state it."""
    at = wording.find(head)
    if at >= 0:
        return at + len(head)
    if len(head) < 4 or re.search(r"[0-9IVX]", head):
        return -1
    found = _one_more_character(head).search(wording)
    return found.end() if found else -1


@lru_cache(maxsize=4096)
def _one_more_character(head: str) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(head[:gap]) + "." + re.escape(head[gap:]) for gap in range(1, len(head))))


def _states(rest: str, tail: str) -> bool:
    words = manifestation_words().get(tail, (tail,))
    return any(word in rest for word in words)


@lru_cache(maxsize=4)
def reading_of(table: IcdTable) -> TableReading:
    return TableReading(table)


@lru_cache(maxsize=65536)
def detail_tokens(text: str) -> frozenset[str]:
    """Stages, types, grades and courses a wording states, in one spelling (III期 → 3期, 持续性 → 持续)."""
    found = set()
    for match in _DETAIL.finditer(arabic_numerals(normalize_text(text), "期|型|级|度")):
        if match.group(3):
            found.add(match.group(3))
        else:
            number = _ROMAN.get(match.group(1), match.group(1))
            found.add(number + match.group(2))
    return frozenset(found)


def read_as_coder(text: str, ranked: list[Candidate], table: IcdTable) -> list[Candidate]:
    """The lookup's ranked candidates as a coder reads them against the table (see the module's doc)."""
    if not ranked:
        return ranked
    wording = normalize_text(expand_terms(text))
    reading = reading_of(table)
    top_score = ranked[0].score
    promoted: list[Candidate] = []
    removed: set[str] = set()
    for rule in sense_rules():
        if rule.applies(wording):
            if rule.never:
                removed |= {c.code for c in ranked if rule.never.search(c.code)}
            entry = table.get(rule.prefer) if rule.prefer else None
            if entry is not None:
                promoted.append(Candidate(entry.code, entry.name, top_score, f"{SENSE} ({rule.reason})"))
    stated, contradicted = reading.stated(wording)
    removed |= {t.code for t in contradicted}
    if stated and not promoted:
        best = stated[0]
        promoted.append(Candidate(best.code, best.name, top_score, f"{COMBINATION} (伴有{best.tail})"))
    kept = [c for c in ranked if c.code not in removed and c.code not in {p.code for p in promoted}]
    if not promoted:
        detailed = _stated_detail(wording, kept, reading)
        if detailed is not None:
            promoted.append(detailed)
            kept = [c for c in kept if c.code != detailed.code]
    return promoted + kept


def _stated_detail(wording: str, ranked: list[Candidate], reading: TableReading) -> Candidate | None:
    """The title that states the wording's stage, type, grade or course, when the top candidate's does not:
    within the top's category, or another proposed category whose title names the same condition. A course
    (急性, 持续) moves only an unspecified top (I48.9 → I48.1 持续心房颤动); a number (5期, 1型) any."""
    tokens = detail_tokens(wording)
    if not tokens or not ranked:
        return None
    top = ranked[0]
    have = tokens & detail_tokens(top.name)
    if not _unspecified(top):
        tokens = {t for t in tokens if t[:1].isdigit()} | have
    plain = _without_details(wording)
    categories = list(dict.fromkeys(c.code[:3] for c in ranked))[:_CANDIDATE_CATEGORIES]
    best: tuple[int, IcdEntry] | None = None
    for category in categories:
        for entry in (e for e in map(reading.table.get, children(category, reading.table)) if e is not None):
            said = tokens & detail_tokens(entry.name)
            if len(said) <= len(have) or (best is not None and len(said) <= best[0]):
                continue
            if category != top.code[:3] and fuzz.ratio(_without_details(entry.name), plain) < _SAME_CONDITION:
                continue
            best = (len(said), entry)
    if best is None:
        return None
    entry = best[1]
    said_words = "、".join(sorted(tokens & detail_tokens(entry.name)))
    return Candidate(entry.code, entry.name, top.score, f"{DETAIL} ({said_words})")


def _unspecified(candidate: Candidate) -> bool:
    return "未特指" in candidate.name or candidate.code.endswith(".9") or len(candidate.code) == 3


def _without_details(text: str) -> str:
    return _NOISE.sub("", _DETAIL.sub("", normalize_text(text)))
