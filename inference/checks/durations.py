"""A course in time the record does not write: 反复胸闷气促7年 where the record says 3年, 加重1月 where it says
1周. A duration is a fact of the history like a lab value, so an altered one is an error (V6); the record may
write it in Chinese numerals (一周, 两年, 十余天) and the summary in digits."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inference.record.values import fold

_UNITS = r"个多月|个月|月余|多月|月|天|日|周|年|小时|分钟|h"
_UNIT = f"(?:{_UNITS})"
_DIGITS = re.compile(r"(\d+(?:\.\d+)?)\s*(\+|余|多)?\s*(" + _UNITS + ")")
_CHINESE = {"半": "0.5", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7",
            "八": "8", "九": "9", "十": "10"}
_CHINESE_NUMBER = re.compile(r"(十[一二三四五六七八九]|[一二三四五六七八九]十[一二三四五六七八九]?|[半一二两三四五六七八九十])"
                             r"(?=\s*(?:\+|余|多)?\s*(?:个)?" + _UNIT + ")")
_UNIT_SPELLINGS = {"日": "天", "个月": "月", "个多月": "月", "多月": "月", "月余": "月", "h": "小时"}


def _number(chinese: str) -> str:
    if len(chinese) == 1:
        return _CHINESE[chinese]
    tens, _, ones = chinese.partition("十")
    return str(int(_CHINESE.get(tens, "1")) * 10 + (int(_CHINESE[ones]) if ones else 0))


def _digits(text: str) -> str:
    return _CHINESE_NUMBER.sub(lambda m: _number(m.group(1)), fold(text))


def _spans(text: str) -> list[tuple[int, int, tuple[str, str]]]:
    """(start, end, (number, unit)) of every duration in ``text`` (already in digits)."""
    return [(m.start(), m.end(), (f"{float(m.group(1)):g}", _UNIT_SPELLINGS.get(m.group(3), m.group(3))))
            for m in _DIGITS.finditer(text)]


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
