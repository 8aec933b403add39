"""JSON's structure in text a model wrote, which may be cut off or wrapped in prose: the brackets and commas
outside strings, and whether the text ends inside a string. One scanner for the tool-call parser (top-level
objects in a reply) and the streamed summary (closing a prefix to read it)."""

from __future__ import annotations

from dataclasses import dataclass, field

STRUCTURAL = "{}[],"


@dataclass
class JsonScan:
    marks: list[tuple[int, str]] = field(default_factory=list)  # (index, character) of {}[], outside strings
    open_string: bool = False  # the text ends inside a string
    dangling_escape: bool = False  # … right after its backslash


def scan_json(text: str) -> JsonScan:
    scan = JsonScan()
    in_string = escaped = False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in STRUCTURAL:
            scan.marks.append((index, char))
    scan.open_string, scan.dangling_escape = in_string, escaped
    return scan
