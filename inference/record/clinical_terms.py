"""Non-standard clinical forms (心梗, 心衰, COPD, 肾亏 …) and their standard terms, from one resource file.

The ICD lookup expands them before matching; validation flags them in summaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from inference.paths import resources_dir
from inference.tsv_files import read_tsv


@dataclass(frozen=True)
class TermVariant:
    alias: str
    standard: str  # "" when there is no standard equivalent (肾亏)
    kind: str
    note: str


@lru_cache(maxsize=1)
def clinical_synonyms() -> tuple[TermVariant, ...]:
    rows = read_tsv(resources_dir() / "terms" / "clinical_synonyms.tsv", 4)
    variants = [TermVariant(alias, standard, kind, note) for alias, standard, kind, note in rows]
    # Longest first, so 急性心梗 wins over 心梗.
    return tuple(sorted(variants, key=lambda v: -len(v.alias)))


def _is_latin(alias: str) -> bool:
    return alias.isascii()


@lru_cache(maxsize=1)
def _variant_pattern() -> re.Pattern[str]:
    parts = []
    for variant in clinical_synonyms():
        escaped = re.escape(variant.alias)
        parts.append(rf"(?<![A-Za-z]){escaped}(?![A-Za-z])" if _is_latin(variant.alias) else escaped)
    return re.compile("|".join(parts))


@dataclass(frozen=True)
class TermHit:
    start: int
    end: int
    variant: TermVariant


def find_nonstandard_terms(text: str) -> list[TermHit]:
    """Every non-standard form in ``text`` that is not already part of its own standard form."""
    by_alias = {variant.alias: variant for variant in clinical_synonyms()}
    hits: list[TermHit] = []
    for match in _variant_pattern().finditer(text):
        variant = by_alias[match.group(0)]
        if variant.standard and _inside_standard(text, match.start(), variant):
            continue
        hits.append(TermHit(match.start(), match.end(), variant))
    return hits


def _inside_standard(text: str, start: int, variant: TermVariant) -> bool:
    """脑梗 inside 脑梗死 (or 心衰 inside …心衰竭) is already standard wording."""
    standard = variant.standard
    for offset in range(len(standard)):
        begin = start - offset
        if begin >= 0 and text.startswith(standard, begin):
            return True
    following = text[start + len(variant.alias): start + len(variant.alias) + 1]
    return variant.alias == "脑梗" and following in ("死", "塞")


def expand_terms(text: str) -> str:
    """Replace non-standard forms with their standard term, for matching against code tables."""
    result: list[str] = []
    cursor = 0
    for hit in find_nonstandard_terms(text):
        if not hit.variant.standard or hit.start < cursor:
            continue
        result.append(text[cursor:hit.start])
        result.append(hit.variant.standard)
        cursor = hit.end
    result.append(text[cursor:])
    return "".join(result)
