"""Find measured values in Chinese clinical text: ``BP 150/90mmHg``, ``肌酐 138 μmol/L``, ``WBC 5.0×109/L``.

Offsets always refer to the original text: full-width characters are folded one for one, never by
a length-changing normalization, so a span can be highlighted where the doctor sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from inference.paths import resources_dir
from inference.tsv_files import read_tsv

_FOLD = {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}
_FOLD.update({"\u3000": " ", "．": ".", "～": "~", "≤": "<", "≥": ">", "µ": "μ", "Ｘ": "×", "✕": "×"})


def fold(text: str) -> str:
    """Full-width digits, letters and symbols to ASCII, one character for one (offsets unchanged)."""
    return "".join(_FOLD.get(char, char) for char in text)


_CHINESE_DIGITS = {"半": "0.5", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5", "六": "6", "七": "7",
                   "八": "8", "九": "9", "十": "10"}
_CHINESE_NUMBER = r"(十[一二三四五六七八九]|[一二三四五六七八九]十[一二三四五六七八九]?|[半一二两三四五六七八九十])"


def _arabic(chinese: str) -> str:
    if len(chinese) == 1:
        return _CHINESE_DIGITS[chinese]
    tens, _, ones = chinese.partition("十")
    return str(int(_CHINESE_DIGITS.get(tens, "1")) * 10 + (int(_CHINESE_DIGITS[ones]) if ones else 0))


@lru_cache(maxsize=8)
def _numbers_before(followed_by: str) -> re.Pattern[str]:
    return re.compile(_CHINESE_NUMBER + f"(?={followed_by})")


def arabic_numerals(text: str, followed_by: str) -> str:
    """Chinese numerals written before ``followed_by`` (a regular expression: a unit of time, 期, 型) in digits:
    两周 → 2周, 十余天 → 10余天, 三期 → 3期. Elsewhere 一 and 十 are words (一般, 十二指肠), left alone."""
    return _numbers_before(followed_by).sub(lambda m: _arabic(m.group(1)), text)


@dataclass(frozen=True)
class ParameterRange:
    parameter: str
    unit: str
    low: float
    high: float
    key: bool


@dataclass(frozen=True)
class Measurement:
    start: int  # name start (or value start when unnamed)
    end: int  # unit end
    value_start: int
    value_end: int
    unit_start: int
    name: str
    value: str
    unit: str  # canonical spelling
    parameter: str | None

    @property
    def comparator(self) -> str:
        return self.value[0] if self.value[:1] in "<>" else ""

    @property
    def numbers(self) -> tuple[float, ...]:
        return tuple(float(n) for n in re.findall(r"\d+(?:\.\d+)?", self.value))

    @property
    def identity(self) -> tuple[str, tuple[float, ...], str]:
        """Same value as written: comparator, numbers and canonical unit."""
        return (self.comparator, self.numbers, self.unit)

    def as_text(self) -> str:
        return f"{self.value}{self.unit}"


@lru_cache(maxsize=1)
def unit_spellings() -> dict[str, str]:
    rows = read_tsv(resources_dir() / "validation" / "units.tsv", 2)
    return {fold(written): canonical for written, canonical in rows}


@lru_cache(maxsize=1)
def parameter_table() -> tuple[dict[str, list[ParameterRange]], dict[str, str]]:
    """(parameter → ranges by unit, written name → parameter)."""
    ranges: dict[str, list[ParameterRange]] = {}
    names: dict[str, str] = {}
    for parameter, aliases, unit, low, high, key in read_tsv(resources_dir() / "validation" / "parameters.tsv", 6):
        ranges.setdefault(parameter, []).append(
            ParameterRange(parameter, unit_spellings().get(unit, unit), float(low), float(high), key.strip() == "key")
        )
        for alias in aliases.split("|"):
            names.setdefault(alias.strip().upper(), parameter)
    return ranges, names


_UNIT_ONLY_PARAMETERS = {"岁": "age", "℃": "temperature"}
# Measured at the bedside and written in 现病史/查体, not results of 辅助检查.
VITAL_SIGNS = frozenset({"systolic_bp", "heart_rate", "temperature", "respiratory_rate", "spo2"})


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    units = sorted(unit_spellings(), key=len, reverse=True)
    unit_alternation = "|".join(re.escape(u) for u in units)
    return re.compile(
        r"(?:(?P<name>[A-Za-z][A-Za-z0-9+\-]*?|[\u4e00-\u9fff]{1,8})[ \t]*[:：]?[ \t\n]*)?"
        r"(?P<value>[<>]?[ ]?\d+(?:\.\d+)?(?:[ ]?(?:/|-|~|至)[ ]?\d+(?:\.\d+)?)?)"
        rf"[ \t\n]*(?P<unit>{unit_alternation})(?![A-Za-z])"
    )


def resolve_parameter(name: str, unit: str) -> str | None:
    ranges, names = parameter_table()
    candidates = [name.upper()]
    if name and re.match(r"[\u4e00-\u9fff]", name):  # "查体血压" → try the tail: 血压
        candidates += [name[i:] for i in range(1, len(name) - 1)]
    for candidate in candidates:
        parameter = names.get(candidate.upper())
        if parameter and any(r.unit == unit for r in ranges[parameter]):
            return parameter
    if unit == "mmHg" and not name:
        return "systolic_bp"
    return _UNIT_ONLY_PARAMETERS.get(unit)


def find_measurements(text: str) -> list[Measurement]:
    folded = fold(text)
    found = []
    for match in _pattern().finditer(folded):
        name = match.group("name") or ""
        unit = unit_spellings()[match.group("unit")]
        value = re.sub(r"\s+", "", match.group("value"))
        parameter = resolve_parameter(name, unit)
        start = match.start("name") if name else match.start("value")
        found.append(Measurement(start, match.end("unit"), match.start("value"), match.end("value"),
                                 match.start("unit"), name, value, unit, parameter))
    return found


def implausible(measurement: Measurement) -> ParameterRange | None:
    """The violated range, if this value cannot be physiological (unit-aware; blood pressure per part)."""
    if measurement.parameter is None:
        return None
    ranges, _ = parameter_table()
    numbers = measurement.numbers
    parameters = [measurement.parameter]
    if measurement.parameter == "systolic_bp" and len(numbers) == 2 and "/" in measurement.value:
        parameters = ["systolic_bp", "diastolic_bp"]
    elif "-" in measurement.value or "~" in measurement.value or "至" in measurement.value:
        parameters = [measurement.parameter] * len(numbers)  # a range: both ends must be plausible
    for parameter, number in zip(parameters, numbers):
        for limit in ranges.get(parameter, []):
            if limit.unit == measurement.unit and not limit.low <= number <= limit.high:
                return limit
    return None


def is_key(measurement: Measurement) -> bool:
    if measurement.parameter is None:
        return False
    ranges, _ = parameter_table()
    return any(r.key and r.unit == measurement.unit for r in ranges.get(measurement.parameter, []))


def same_measurement(written: Measurement, source: Measurement) -> bool:
    """``written`` (in a summary) states ``source``'s value: the same value and unit, and where both name
    what they measure, the same parameter (HR 105次/分 is not supported by R 105次/分)."""
    if written.identity != source.identity:
        return False
    return written.parameter is None or source.parameter is None or written.parameter == source.parameter
