"""What a run knows about its summary that the summary's text does not say: where in the record each
statement was summarized from, and what the draft guard removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Range = tuple[int, int]
# (section, statement text) → the record ranges it was summarized from; statements not listed: the whole record.
Scopes = dict[tuple[str, str], list[Range]]


# What the draft guard removes (``summary.draft_guard``): G2 a diagnosis where the record states none, G3 a
# diagnosis not in the record, G4 a remnant of the prompt's example, G5 a symptom written as a diagnosis, V1 a
# value not in the record, U1 a unit the record does not write; for a template's kinds (``summary.template_guard``)
# M1 a drug not in the record, M2 a dose not written with it, V7 a date not in the record, N1 a finding negated.
# G3, G4, V1, M1 and V7 say the draft holds what its record does not support: they count against it when the
# review decides whether it comes from the record at all.
UNSUPPORTED_REMOVALS = ("G3", "G4", "V1", "M1", "V7")


@dataclass(frozen=True)
class Removal:
    rule_id: str  # see above
    section: str
    text: str  # what the model wrote
    reason: str


@dataclass(frozen=True)
class RunEvidence:
    """What the run that wrote a summary knows and its text does not: the record part each statement was
    summarized from (long records) and what the draft guard removed. Kept with the run (history, the JSON of
    ``summarize``), so that every later review of the same summary finds what the first one found."""

    scopes: Scopes = field(default_factory=dict)
    removals: tuple[Removal, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"scopes": [{"section": section, "text": text, "ranges": [list(r) for r in ranges]}
                           for (section, text), ranges in self.scopes.items()],
                "removals": [{"rule_id": r.rule_id, "section": r.section, "text": r.text, "reason": r.reason}
                             for r in self.removals]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RunEvidence:
        """``None`` (a summary written by hand, a run from before evidence was kept): no evidence."""
        if not data:
            return cls()
        try:
            scopes = {(str(item["section"]), str(item["text"])): [(int(a), int(b)) for a, b in item["ranges"]]
                      for item in data.get("scopes", [])}
            removals = tuple(Removal(str(r["rule_id"]), str(r["section"]), str(r["text"]), str(r["reason"]))
                             for r in data.get("removals", []))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:  # ValueError: what this raises
            raise ValueError(f"not the evidence `summarize --json` writes ({type(exc).__name__}: {exc})") from exc
        return cls(scopes, removals)
