"""Where each line of a record read from a PDF, a scan or a photo stands in the original: file, page and box,
and, for text found by OCR, how sure the reading was.

A record typed or pasted as text has no provenance (every line is simply where it is). A record read from
pages keeps one ``SourceLine`` per line of its text, so a statement grounded at characters 120-134 of the
record is traced to page 3 and the box around those characters; the review warns where a value rests on a
line the OCR read with low confidence (O1), because a misread 138 that the model copies faithfully still
matches the extracted text and is still wrong.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property
from typing import Any

# PP-OCRv4's line score below which a line's digits are not trusted without a look at the original: measured on
# the scanned-record benchmark (bench/scanned_records.py, README), where misread values scored below it.
LOW_CONFIDENCE = 0.9

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 from the page's top-left, in the page's own units


@dataclass(frozen=True)
class SourceLine:
    start: int  # offsets of the line in the record's text
    end: int
    file_name: str
    page: int  # 1-based
    box: Box
    confidence: float | None = None  # the OCR's score of the line; None: read from a text layer or markup

    @property
    def uncertain(self) -> bool:
        return self.confidence is not None and self.confidence < LOW_CONFIDENCE

    def where(self) -> str:
        """第 3 页 (of a one-file record) or 外院病历.jpg 第 1 页."""
        return f"{self.file_name} 第 {self.page} 页" if self.file_name else f"第 {self.page} 页"

    def as_list(self) -> list[Any]:
        return [self.start, self.end, self.file_name, self.page, [round(v, 1) for v in self.box],
                None if self.confidence is None else round(self.confidence, 4)]

    @classmethod
    def from_list(cls, row: list[Any]) -> SourceLine:
        start, end, file_name, page, box, confidence = row
        return cls(int(start), int(end), str(file_name), int(page), tuple(float(v) for v in box),  # type: ignore[arg-type]
                   None if confidence is None else float(confidence))


@dataclass(frozen=True)
class Provenance:
    lines: tuple[SourceLine, ...] = ()  # in text order, not overlapping
    ocr_pages: int = 0  # pages whose text came from OCR
    pages: int = 0

    def __bool__(self) -> bool:
        return bool(self.lines)

    def overlapping(self, start: int, end: int) -> list[SourceLine]:
        """The lines that hold any of the record's characters start..end."""
        found = []
        for index in range(max(0, bisect.bisect_right(self._starts, start) - 1), len(self.lines)):
            line = self.lines[index]
            if line.start >= end:
                break
            if line.end > start:
                found.append(line)
        return found

    @cached_property
    def _starts(self) -> list[int]:
        """Computed once: a review asks for every statement's lines, and a 200-page record has ~10,000."""
        return [line.start for line in self.lines]

    def as_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "ocr_pages": self.ocr_pages, "lines": [line.as_list() for line in self.lines]}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Provenance:
        if not data:
            return cls()
        return cls(tuple(SourceLine.from_list(row) for row in data.get("lines", [])), int(data.get("ocr_pages", 0)),
                   int(data.get("pages", 0)))
