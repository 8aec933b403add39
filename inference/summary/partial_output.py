"""The summary as the model writes it: the sections so far, read from the JSON a part has streamed up to now, so
the window can fill them in while a slow CPU writes (the final draft, guarded and checked, replaces them).

Reading a prefix never fails: an open string, a half-written key, a number cut off are left out until they are
complete. Each part of a long record streams its own JSON; what finished parts wrote stays in front."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from inference.llm.json_scan import scan_json
from inference.record.summary import ExamItem
from inference.templates.content import ITEM_MODELS, item_text
from inference.templates.spec import SummaryTemplate

SECTION_FIELDS = ("chief_complaint", "present_illness", "auxiliary_exams", "diagnoses")
_CLOSERS = {"{": "}", "[": "]"}
MAX_STREAMED_CHARS = 200_000  # a part's output is bounded by max_tokens; past this the preview stops growing


def completed(prefix: str) -> object | None:
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
    data = completed(streamed[:MAX_STREAMED_CHARS].lstrip())
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


def partial_template_sections(streamed: str, template: SummaryTemplate) -> dict[str, str]:
    """A template's sections as far as ``streamed`` has written them: list items one a line."""
    data = completed(streamed[:MAX_STREAMED_CHARS].lstrip())
    data = data if isinstance(data, dict) else {}
    sections = {}
    for spec in template.sections:
        value = data.get(spec.id)
        if spec.kind == "text":
            sections[spec.id] = _text(value)
            continue
        model = ITEM_MODELS[spec.kind]
        items = [model.model_construct(**{k: _text(v) for k, v in item.items() if k in model.model_fields})
                 for item in (value if isinstance(value, list) else []) if isinstance(item, dict)]
        lines = []
        for item in items:
            try:
                lines.append(item_text(item))
            except AttributeError:  # a field not written yet
                continue
        sections[spec.id] = "\n".join(line for line in lines if line.strip())
    return sections


@dataclass
class StreamedDraft:
    """The text of a run as it streams, part by part. Read on the GUI thread at every chunk: a finished part is
    read once, only the part being written again. ``template``: a template's run (None: the four sections)."""

    parts: list[str] = field(default_factory=list)
    _finished: list[dict[str, str]] = field(default_factory=list)  # the sections of every part but the last
    template: SummaryTemplate | None = None

    def _read(self, streamed: str) -> dict[str, str]:
        return partial_sections(streamed) if self.template is None else \
            partial_template_sections(streamed, self.template)

    def new_part(self) -> None:
        if self.parts:
            self._finished.append(self._read(self.parts[-1]))
        self.parts.append("")

    def feed(self, piece: str) -> None:
        if not self.parts:
            self.parts.append("")
        if len(self.parts[-1]) < MAX_STREAMED_CHARS:
            self.parts[-1] += piece

    def sections(self) -> dict[str, str]:
        """Every part's sections so far, joined as the parts will be fused: 主诉 of the first part that has one,
        the rest one after the other."""
        every = [*self._finished, *([self._read(self.parts[-1])] if self.parts else [])]
        if self.template is not None:
            return {spec.id: "\n".join(s[spec.id] for s in every if s[spec.id]) for spec in self.template.sections}
        joined = dict.fromkeys(SECTION_FIELDS, "")
        for sections in every:
            if not joined["chief_complaint"]:
                joined["chief_complaint"] = sections["chief_complaint"]
            for name in SECTION_FIELDS[1:]:
                if sections[name]:
                    joined[name] = (joined[name] + "\n" if joined[name] else "") + sections[name]
        return joined
