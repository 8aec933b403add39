"""A course in time the record does not write: 反复胸闷气促7年 where the record says 3年, 加重1月 where it says
1周. A duration is a fact of the history like a lab value, so an altered one is an error (V6); the record may
write it in Chinese numerals (一周, 两年, 十余天) and the summary in digits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inference.record.values import arabic_numerals, fold

_UNITS = r"个多月|个月|月余|多月|月|天|日|周|年|小时|分钟|h"
_UNIT = f"(?:{_UNITS})"
# A course in time as digits: 2天, 3+年, 10余年, 14小时, 1个月 (Chinese numerals are turned into digits first).
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(\+|余|多)?\s*(" + _UNITS + ")")
_UNIT_SPELLINGS = {"日": "天", "个月": "月", "个多月": "月", "多月": "月", "月余": "月", "h": "小时"}


def _digits(text: str) -> str:
    return arabic_numerals(fold(text), r"\s*(?:\+|余|多)?\s*(?:个)?" + _UNIT)


def _spans(text: str) -> list[tuple[int, int, tuple[str, str]]]:
    """(start, end, (number, unit)) of every duration in ``text`` (already in digits)."""
    return [(m.start(), m.end(), (f"{float(m.group(1)):g}", _UNIT_SPELLINGS.get(m.group(3), m.group(3))))
            for m in DURATION.finditer(text)]


@dataclass(frozen=True)
class UnstatedDuration:
    start: int  # in the statement's text
    end: int
    text: str


def unstated_durations(statement: str, record_part: str) -> list[UnstatedDuration]:
    """Durations in ``statement`` that ``record_part`` never writes (number and unit; 余/多/+ not compared)."""
    if len(fold(statement)) != len(statement):
        return []  # folding changed the length: spans would not map back (never so for CJK text)
    written = {key for _s, _e, key in _spans(_digits(record_part))}
    digits = _digits(statement)
    if len(digits) != len(statement):
        return [UnstatedDuration(0, len(statement), statement)] if not written >= {
            key for _s, _e, key in _spans(digits)} else []
    return [UnstatedDuration(s, e, statement[s:e]) for s, e, key in _spans(digits) if key not in written]
