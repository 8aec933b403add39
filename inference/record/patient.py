"""Who the record is about, as far as coding needs it: sex and age, read once from the record's opening lines
(患者男性，68岁 · 杨XX，女，59岁 · 男性病儿，3岁 · 性别：女 年龄：45岁). Unknown stays unknown: no rule that needs
a sex or an age applies to a record that does not say it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inference.record.values import fold

MALE, FEMALE = "male", "female"
_OPENING = 400  # characters: the sex and age stand in a record's first lines
_SEX = re.compile(r"性别\s*[:：]?\s*(男|女)|(?<![男女子])(男|女)(?:性)?(?:病人|患者|病儿|患儿|婴儿)?\s*[，,、/]\s*\d|"
                  r"(?:患者|病人|患儿)\s*(男|女)|(男|女)性|[，,、]\s*(男|女)\s*(?=[，,、/])")
# An age, not a course: 68岁, 60y, 月龄3, 3个月大, 日龄5天, 出生3天 — never 2个月前 or 1天.
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?P<years>岁|[yY](?![a-zA-Z]))|月龄\s*(?P<months>\d+)|"
                  r"(?P<months2>\d+)\s*个月\s*(?:龄|大)|(?:日龄|出生后?)\s*(?P<days>\d+)\s*天?|"
                  r"[男女]\s*[，,]\s*(?P<days2>\d+)\s*天")


@dataclass(frozen=True)
class Patient:
    sex: str | None = None  # MALE, FEMALE or unknown
    age_years: float | None = None

    def describe(self) -> str:
        sex = {MALE: "男", FEMALE: "女"}.get(self.sex or "", "性别不详")
        age = f"{self.age_years:g} 岁" if self.age_years is not None else "年龄不详"
        return f"{sex}，{age}"


def patient_of(record: str) -> Patient:
    opening = fold(record[:_OPENING])
    sex_match = _SEX.search(opening)
    sex = None
    if sex_match is not None:
        word = next(group for group in sex_match.groups() if group)
        sex = MALE if word == "男" else FEMALE
    age_match = _AGE.search(opening)
    age = None
    if age_match is not None:
        months = age_match.group("months") or age_match.group("months2")
        if age_match.group("years"):
            age = float(age_match.group(1))
        elif months:
            age = int(months) / 12
        else:
            age = int(age_match.group("days") or age_match.group("days2")) / 365
    return Patient(sex, age)
