"""What a doctor did to the model's draft before signing it, measured from the two stored versions: per section,
how much of the model's text was kept (character level) and the edit distance, values added or removed;
diagnoses and ICD codes accepted, changed or added; the findings shown and those that stood at signing; the
time from draft to signature. Only counts leave this module: no patient text is in a measure."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rapidfuzz.distance import Indel, Levenshtein

from inference.record.summary import ABSENT, SECTIONS, StructuredSummary, section_text
from inference.record.values import find_measurements

# A section of which less than half of the model's text was kept was rewritten, not edited.
REWRITTEN_BELOW = 0.5


def _compared_text(summary: StructuredSummary, section: str) -> str:
    """A section as the doctor reads it; 原文未记载 counts as empty (filling it in adds text, keeps none)."""
    text = section_text(summary, section)
    return "" if text.strip() == ABSENT else text


def _values(text: str) -> Counter[tuple[object, ...]]:
    return Counter((m.parameter, *m.identity) for m in find_measurements(text))


@dataclass(frozen=True)
class SectionEdit:
    section: str
    draft_chars: int
    kept_chars: int  # the longest common subsequence of the draft and the signed text
    distance: int  # Levenshtein distance, in characters
    values_added: int
    values_removed: int

    @property
    def kept_share(self) -> float | None:
        """The share of the model's text kept in what was signed (None: the model wrote nothing here)."""
        return self.kept_chars / self.draft_chars if self.draft_chars else None

    @property
    def rewritten(self) -> bool:
        share = self.kept_share
        return share is not None and share < REWRITTEN_BELOW


def section_edit(section: str, draft: str, signed: str) -> SectionEdit:
    added, removed = _values(signed) - _values(draft), _values(draft) - _values(signed)
    kept = (len(draft) + len(signed) - Indel.distance(draft, signed)) // 2  # the LCS, from the indel distance
    return SectionEdit(section, len(draft), kept, Levenshtein.distance(draft, signed),
                       sum(added.values()), sum(removed.values()))


@dataclass(frozen=True)
class SigningMeasures:
    sections: tuple[SectionEdit, ...]
    diagnoses_added: int
    diagnoses_removed: int
    codes_accepted: int  # the draft's code kept for its diagnosis
    codes_changed: int  # the diagnosis kept, another code signed
    codes_added: int  # a code where the draft had none (or for a diagnosis the doctor added)
    codes_removed: int  # a draft code the doctor took away
    seconds_to_sign: float
    findings_shown: dict[str, int] = field(default_factory=dict)  # the model draft's findings, by rule
    # The findings that stood when the doctor signed, by rule; None for a signature from before this was kept.
    findings_standing: dict[str, int] | None = None
    overridden: int = 0  # what should have stopped the signature and was signed over, with a reason

    @property
    def distance(self) -> int:
        return sum(s.distance for s in self.sections)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SigningMeasures:
        return cls(**{**data, "sections": tuple(SectionEdit(**s) for s in data.get("sections", ()))})


def _codes(icd: list[dict[str, Any]]) -> dict[str, str]:
    return {str(item.get("diagnosis", "")): str(item["code"]) for item in icd
            if isinstance(item, dict) and item.get("code")}


def measure_signing(draft: StructuredSummary, signed: StructuredSummary, draft_icd: list[dict[str, Any]],
                    signed_icd: list[dict[str, Any]], drafted_at: datetime, signed_at: datetime, *,
                    shown_rules: list[str], standing_rules: list[str] | None, overridden: int) -> SigningMeasures:
    draft_codes, signed_codes = _codes(draft_icd), _codes(signed_icd)
    draft_names, signed_names = {d.name for d in draft.diagnoses}, {d.name for d in signed.diagnoses}
    changed = sum(1 for name, code in signed_codes.items() if draft_codes.get(name, code) != code)
    accepted = sum(1 for name, code in signed_codes.items() if draft_codes.get(name) == code)
    return SigningMeasures(
        sections=tuple(section_edit(name, _compared_text(draft, name), _compared_text(signed, name))
                       for name, _heading in SECTIONS),
        diagnoses_added=len(signed_names - draft_names), diagnoses_removed=len(draft_names - signed_names),
        codes_accepted=accepted, codes_changed=changed,
        codes_added=sum(1 for name in signed_codes if name not in draft_codes),
        codes_removed=sum(1 for name in draft_codes if name not in signed_codes),
        seconds_to_sign=max(0.0, (signed_at - drafted_at).total_seconds()),
        findings_shown=dict(Counter(shown_rules)),
        findings_standing=dict(Counter(standing_rules)) if standing_rules is not None else None,
        overridden=overridden,
    )
