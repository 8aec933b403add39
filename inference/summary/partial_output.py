"""The summary as the model writes it: the sections so far, read from the JSON a part has streamed up to now, so
the window can fill them in while a slow CPU writes (the final draft, guarded and checked, replaces them).

Reading a prefix never fails: an open string, a half-written key, a number cut off are left out until they are
complete. Each part of a long record streams its own JSON; what finished parts wrote stays in front."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from inference.llm.json_scan import scan_json
from inference.record.summary import ExamItem

SECTION_FIELDS = ("chief_complaint", "present_illness", "auxiliary_exams", "diagnoses")
_CLOSERS = {"{": "}", "[": "]"}
MAX_STREAMED_CHARS = 200_000  # a part's output is bounded by max_tokens; past this the preview stops growing


def _completed(prefix: str) -> object | None:
    """``prefix`` of a JSON document closed as it stands, trimmed back to the last complete value if needed."""
    stack: list[str] = []
    safe = []  # (position after which the prefix may be cut, stack then): after a value or an opening bracket
    scan = scan_json(prefix)
    for index, char in scan.marks:
        if char in _CLOSERS:
            stack.append(char)
            safe.append((index + 1, tuple(stack)))
        elif char in "]}" and stack:
            stack.pop()
            safe.append((index + 1, tuple(stack)))
        elif char == ",":
            safe.append((index, tuple(stack)))
    attempts = []
    if scan.open_string:  # an open string value: shown as far as it goes (a dangling escape dropped)
        text = prefix[:-1] if scan.dangling_escape else prefix
        attempts.append(text + '"' + "".join(_CLOSERS[c] for c in reversed(stack)))
    attempts.append(prefix + "".join(_CLOSERS[c] for c in reversed(stack)))
    attempts += [prefix[:end] + "".join(_CLOSERS[c] for c in reversed(opened)) for end, opened in reversed(safe[-8:])]
    for attempt in attempts:
        try:
            return json.loads(attempt)
        except (ValueError, RecursionError):
            continue
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def partial_sections(streamed: str) -> dict[str, str]:
    """The four sections as far as ``streamed`` (one part's JSON, possibly cut) has written them, in the pane's
    form: exam items and diagnoses one per line."""
    data = _completed(streamed[:MAX_STREAMED_CHARS].lstrip())
    if not isinstance(data, dict):
        return dict.fromkeys(SECTION_FIELDS, "")
    exams = []
    for item in data.get("auxiliary_exams") or [] if isinstance(data.get("auxiliary_exams"), list) else []:
        if isinstance(item, dict) and _text(item.get("name")):
            exams.append(ExamItem.model_construct(name=_text(item.get("name")), value=_text(item.get("value")),
                                                  unit=_text(item.get("unit"))).as_text())
    diagnoses = data.get("diagnoses") if isinstance(data.get("diagnoses"), list) else []
    return {"chief_complaint": _text(data.get("chief_complaint")),
            "present_illness": _text(data.get("present_illness")),
            "auxiliary_exams": "\n".join(exams),
            "diagnoses": "\n".join(_text(d.get("name")) for d in diagnoses if isinstance(d, dict) and d.get("name"))}


@dataclass
class StreamedDraft:
    """The text of a run as it streams, part by part. Read on the GUI thread at every chunk: a finished part is
    read once, only the part being written again."""

    parts: list[str] = field(default_factory=list)
    _finished: list[dict[str, str]] = field(default_factory=list)  # the sections of every part but the last

    def new_part(self) -> None:
        if self.parts:
            self._finished.append(partial_sections(self.parts[-1]))
        self.parts.append("")

    def feed(self, piece: str) -> None:
        if not self.parts:
            self.parts.append("")
        if len(self.parts[-1]) < MAX_STREAMED_CHARS:
            self.parts[-1] += piece

    def sections(self) -> dict[str, str]:
        """Every part's sections so far, joined as the parts will be fused: 主诉 of the first part that has one,
        the rest one after the other."""
        joined = dict.fromkeys(SECTION_FIELDS, "")
        for sections in [*self._finished, *([partial_sections(self.parts[-1])] if self.parts else [])]:
            if not joined["chief_complaint"]:
                joined["chief_complaint"] = sections["chief_complaint"]
            for name in SECTION_FIELDS[1:]:
                if sections[name]:
                    joined[name] = (joined[name] + "\n" if joined[name] else "") + sections[name]
        return joined
