"""Pages read from a PDF, a scan, a photo or an OFD file, joined into one record's text with its provenance.

Each reader hands over lines with their boxes (and the OCR's score); here the pages become the text a doctor
would have typed: lines wrapped by the page width are joined again (a printed "查体：BP" / "150/90mmHg" is one
sentence), page numbers are dropped, and a header or footer the EMR prints on every page (医院名称, 姓名 住院号)
is kept once, where it first stands, not 17 times; PDFium's soft hyphen (0x02) is a hyphen again. Every line of the result keeps its file, page and box.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from inference import limits
from inference.errors import InputError
from inference.record.provenance import Box, Provenance, SourceLine

_PAGE_NUMBER = re.compile(
    r"^(第\s*\d+\s*页\s*[/，,]?\s*(共\s*\d+\s*页)?|共\s*\d+\s*页\s*[/，,]?\s*第\s*\d+\s*页|[-—–]?\s*\d{1,4}\s*[-—–]?|"
    r"\d{1,4}\s*/\s*\d{1,4}|page\s*\d+(\s*(of|/)\s*\d+)?)$", re.IGNORECASE)
_SENTENCE_END = "。；;！!？?：:」”\"）)"
_EDGE_LINES = 2  # lines at the top and the bottom of a page where headers, footers and page numbers stand
_MIN_REPEATS = 3  # pages a line just inside the edge must stand on to be a header (see _repeated_edges)
_FULL_WIDTH = 0.85  # a line reaching this share of the page's text width was wrapped, not ended
_RUN_GAP = 0.3  # of the line's height


@dataclass(frozen=True)
class Line:
    text: str
    box: Box
    confidence: float | None = None


@dataclass(frozen=True)
class Page:
    number: int  # 1-based, in its file
    lines: tuple[Line, ...]
    ocr: bool = False
    file_name: str = ""


def check_length(pages: list[Page], name: str) -> None:
    """Stop reading once the pages hold more text than a record may (the reader's answer stays small)."""
    chars = sum(len(line.text) for page in pages for line in page.lines)
    if chars > limits.RECORD_CHARS:
        raise InputError(f"病历过长（前 {len(pages)} 页已超过 {limits.RECORD_CHARS} 字）/ record too long: {name}")


def group_lines(runs: list[tuple[Box, str, float | None]]) -> list[Line]:
    """Runs of text with their boxes (a PDF's text runs, the OCR's boxes, an OFD's text objects) as lines: a run
    joins a line when its vertical middle lies within the line's height; lines top to bottom, runs left to
    right (a space between them where they stand apart), a line's score the lowest of its runs'."""
    rows: list[list[tuple[Box, str, float | None]]] = []
    for run in sorted(runs, key=lambda r: (r[0][1] + r[0][3]) / 2):
        middle = (run[0][1] + run[0][3]) / 2
        if rows and min(r[0][1] for r in rows[-1]) <= middle <= max(r[0][3] for r in rows[-1]):
            rows[-1].append(run)
        else:
            rows.append([run])
    lines = []
    for row in rows:
        row.sort(key=lambda r: r[0][0])
        box = (min(r[0][0] for r in row), min(r[0][1] for r in row), max(r[0][2] for r in row),
               max(r[0][3] for r in row))
        scores = [r[2] for r in row if r[2] is not None]
        text = " ".join(row[0][1].split())
        for before, run in zip(row, row[1:], strict=False):
            gap = run[0][0] - before[0][2]  # runs of one line set apart (cells, "BP  150/90") keep a space
            text += (" " if gap > _RUN_GAP * (before[0][3] - before[0][1]) else "") + " ".join(run[1].split())
        lines.append(Line(text, box, min(scores) if scores else None))
    return lines


def join_pages(pages: list[Page]) -> tuple[str, Provenance]:
    """The record's text and where each of its lines came from."""
    repeated = _repeated_edges(pages)
    seen: set[str] = set()
    chunks: list[str] = []
    lines: list[SourceLine] = []
    offset = 0
    for page in pages:
        kept = []
        for position, line in enumerate(page.lines):
            text = " ".join(line.text.split())  # a line holds no line break, whatever a reader handed over
            edge = position < _EDGE_LINES or position >= len(page.lines) - _EDGE_LINES
            if not text or edge and _PAGE_NUMBER.match(text):
                continue
            key = _edge_key(text)
            if edge and key in repeated:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(Line(text, line.box, line.confidence))
        for line, glue in zip(kept, _glues(kept), strict=True):
            if chunks:
                chunks.append(glue)
                offset += len(glue)
            chunks.append(line.text)
            lines.append(SourceLine(offset, offset + len(line.text), page.file_name, page.number, line.box,
                                    line.confidence))
            offset += len(line.text)
    return "".join(chunks), Provenance(tuple(lines), sum(p.ocr for p in pages), len(pages))


def _edge_key(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", text))


def _repeated_edges(pages: list[Page]) -> set[str]:
    """Lines at a page's edge that stand at the edge of most pages (digits aside: 第 3 页, a date): a page's first or
    last line on two pages or more, its second or second-last on three or more (a line two pages happen to share
    just inside the edge is content)."""
    if len(pages) < 2:
        return set()
    outermost: Counter[str] = Counter()
    inner: Counter[str] = Counter()
    for page in pages:
        texts = [line.text for line in page.lines if line.text.strip()]
        outermost.update({_edge_key(text) for text in texts[:1] + texts[-1:]})
        inner.update({_edge_key(text) for text in texts[:_EDGE_LINES] + texts[-_EDGE_LINES:]})
    share = 0.6 * len(pages)
    return ({key for key, count in outermost.items() if count >= max(2, share)}
            | {key for key, count in inner.items() if count >= max(_MIN_REPEATS, share)})


def _glues(lines: list[Line]) -> list[str]:
    """What joins each line to the one before: a new line, or nothing where the page width broke a sentence (the
    line before reaches the right edge of the page's text and does not end a sentence). Nothing, not a space: a
    printer breaks a Chinese line inside a value as readily as between words (降钙素原0.17ng/ | ml, CEA9. | 2)."""
    if not lines:
        return []
    left = min(line.box[0] for line in lines)
    width = max(1.0, max(line.box[2] for line in lines) - left)
    glues = ["\n"]
    for before, line in zip(lines, lines[1:], strict=False):
        wrapped = (before.box[2] - left) >= _FULL_WIDTH * width and before.text[-1] not in _SENTENCE_END
        glues.append("\n" if not wrapped or line.box[1] < before.box[1] else "")
    return glues
