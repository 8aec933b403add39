"""Codes a coder can sign: a code that has subcategories in the active table is never the final code.

For each diagnosis of a record the lookup's (or the model's) code is refined in two steps:
1. the combination rules (``resources/icd/combination_rules.tsv``): ICD-10's conventions that make a
   code's subcategory depend on the record's other diagnoses (I11 with heart failure → I11.0) or on its
   own wording (陈旧性脑梗死 → I69.3);
2. then down the table to a leaf: the child named exactly as the diagnosis, the only child, the category's
   ``.9`` (ICD-10's "unspecified" / "without"), or the child whose name is closest to the wording.
Every step is recorded as a reason the ICD panel shows (「同时诊断心力衰竭 → I11.0」). A code the rules
and the table cannot take further stays as it is, marked for the coder to choose.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rapidfuzz import fuzz

from inference.icd.learned import normalize_text
from inference.icd.rules_file import parse_rules
from inference.icd.table import LOOKUP_LEVELS, IcdEntry, IcdTable
from inference.paths import resources_dir

RULES_PATH = resources_dir() / "icd" / "combination_rules.tsv"
_MIN_NAME_SIMILARITY = 50  # rapidfuzz ratio a child's name needs to be taken for the wording
NEEDS_CHOICE = "需人工选择亚目"


@dataclass(frozen=True)
class CombinationRule:
    applies_to: re.Pattern[str]
    with_codes: tuple[re.Pattern[str], ...]
    wording: tuple[tuple[re.Pattern[str], bool], ...]  # each pattern with whether it must match (False: must not)
    becomes: str
    reason: str

    def target(self, code: str, wording: str, other_codes: list[str]) -> str | None:
        if not self.applies_to.search(code):
            return None
        if any(bool(pattern.search(wording)) != wanted for pattern, wanted in self.wording):
            return None
        if not all(any(pattern.search(other) for other in other_codes) for pattern in self.with_codes):
            return None
        return self.becomes.format(category=code[:3])


def _combination_rule(row: list[str]) -> CombinationRule:
    applies_to, with_codes, wording, becomes, reason = row
    if not applies_to or not becomes or not reason:
        raise ValueError("incomplete: a rule needs applies_to, becomes and reason")
    return CombinationRule(
        re.compile(applies_to),
        tuple(re.compile(p.strip()) for p in with_codes.split("&") if p.strip()),
        tuple((re.compile(p.strip().removeprefix("!")), not p.strip().startswith("!"))
              for p in wording.split("&") if p.strip()),
        becomes, reason)


@lru_cache(maxsize=2)
def load_rules(path: Path = RULES_PATH) -> tuple[CombinationRule, ...]:
    return parse_rules(path, 5, "ICD 合并编码规则", _combination_rule)


@dataclass(frozen=True)
class Refined:
    code: str
    name: str
    reasons: tuple[str, ...]  # each step, e.g. "同时诊断心力衰竭 → I11.0"
    leaf: bool

    @property
    def note(self) -> str:
        return "；".join(self.reasons)


class CodeTree:
    """Which codes of a table lie under which: by code prefix (I11 → I11.0 → I11.001; I10 → I10xx02)."""

    def __init__(self, table: IcdTable) -> None:
        self.table = table
        codes = sorted({e.code for e in table.entries if e.level in LOOKUP_LEVELS and e.level != "morphology"})
        self._children: dict[str, list[str]] = defaultdict(list)
        known = set(codes)
        for code in codes:
            parent = next((code[:n] for n in range(len(code) - 1, 2, -1) if code[:n] in known), None)
            if parent is not None:
                self._children[parent].append(code)

    def children(self, code: str) -> list[str]:
        return self._children.get(code, [])

    def is_leaf(self, code: str) -> bool:
        return not self._children.get(code)


@lru_cache(maxsize=4)
def _tree(table: IcdTable) -> CodeTree:
    return CodeTree(table)


def is_leaf(code: str, table: IcdTable) -> bool:
    return _tree(table).is_leaf(code)


def children(code: str, table: IcdTable) -> list[str]:
    """The codes right under ``code`` in the table (I50 → I50.0 … I50.9)."""
    return _tree(table).children(code)


def refine(code: str, wording: str, other_codes: list[str], table: IcdTable) -> Refined:
    """The final code for one diagnosis given the codes of the record's other diagnoses."""
    tree = _tree(table)
    reasons: list[str] = []
    for rule in load_rules():
        target = rule.target(code, wording, other_codes)
        if target is not None and target != code and target in table:
            code = target
            reasons.append(f"{rule.reason} → {target}")
            break
    normalized = normalize_text(wording)
    while not tree.is_leaf(code):
        child, why = _choose_child(tree.children(code), code, normalized, table)
        if child is None:
            reasons.append(NEEDS_CHOICE)
            break
        code = child
        reasons.append(f"{why} → {child}")
    entry = table.get(code)
    return Refined(code, entry.name if entry else code, tuple(reasons), tree.is_leaf(code))


def _choose_child(children: list[str], code: str, normalized: str, table: IcdTable) -> tuple[str | None, str]:
    entries: list[IcdEntry] = [e for e in (table.get(c) for c in children) if e is not None]
    for entry in entries:
        if normalize_text(entry.name) == normalized:
            return entry.code, "名称一致"
    if len(entries) == 1:
        return entries[0].code, "唯一细目"
    unspecified = f"{code}.9" if len(code) == 3 else None
    if unspecified in children:
        return unspecified, "未另说明"
    scored = sorted(((fuzz.ratio(normalize_text(e.name), normalized), e.code) for e in entries), key=lambda s: (-s[0], s[1]))
    if scored and scored[0][0] >= _MIN_NAME_SIMILARITY:
        return scored[0][1], "名称最接近"
    return None, ""


def refine_record(codes: list[tuple[str, str | None]], table: IcdTable) -> list[Refined | None]:
    """``codes``: (wording, code or None) for each diagnosis of one record, in order."""
    refined: list[Refined | None] = []
    for index, (wording, code) in enumerate(codes):
        others = [other for i, (_, other) in enumerate(codes) if i != index and other]
        refined.append(refine(code, wording, others, table) if code else None)
    return refined
