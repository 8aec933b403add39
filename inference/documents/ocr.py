"""Text of a page image by OCR, offline: RapidOCR running PP-OCRv4 (detection, direction, recognition) on
onnxruntime, with its models inside its installed package; nothing is downloaded, ever (a test runs it with
the network unshared). Runs only in the bounded reader process (``documents.sandbox``).

The detector finds text boxes; boxes on one visual line (a table's cells, "BP" and "150/90mmHg" detected
apart) are put back together left to right, lines top to bottom. Pages turned by 90° or 180° (a scan fed
sideways, a phone held upside down) are tried in the four orientations when the upright reading finds little,
and the reading with the most confident text wins. Imported only in the reader process: the app never loads
onnxruntime itself.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
import onnxruntime
from rapidocr_onnxruntime import RapidOCR

from inference import limits
from inference.documents.pages import Line, group_lines
from inference.record.provenance import LOW_CONFIDENCE, Box
from inference.record.values import unit_spellings

Run = tuple[Box, str, float]

# Misreadings the recogniser makes with high scores, seen on the scanned-record benchmark's dev cases (0-39): a
# body temperature's ℃ read as C or °C, and a superscript exponent (10⁹/L) read as a plain digit or a degree
# sign. A line holding one is scored as uncertain whatever its score, so the review asks the doctor to look
# at the original (O1).
_KNOWN_CONFUSIONS = re.compile(r"(?<![\d.])(?:3[4-9]|4[0-2])(?:\.\d+)?\s*C(?![a-z])|\d\s*[°º'’]\s*[C℃]"
                               r"|[×xX]\s*10\s*[°º\d¹²³⁰-⁹]{1,2}\s*/")
_MIN_SCORE = 0.5  # boxes the recogniser itself doubts this much are noise (a stain, a stamp's edge)
_FULL_STOP_AS_O = "[oO](?=$|[\\s，,；;])"  # 。 after a value's unit read as "o": mmHgo, g/Lo (no unit ends so)
# Misreadings put right because only one reading is possible, each seen on the benchmark's dev cases (0-39): ℃ read
# as °℃ (no page prints a degree sign before ℃) and the × of ×10⁹/L read as the letter X or x.
_CERTAIN = ((re.compile(r"[°º]\s*℃"), "℃"), (re.compile(r"(?<=\d)\s*[Xx]\s*(?=10\d{0,2}\s*/)"), "×"))
_UPRIGHT_ENOUGH = 0.8  # mean score of an upright reading that needs no other orientation tried


@lru_cache(maxsize=1)
def _engine() -> Any:
    onnxruntime.disable_telemetry_events()  # Windows' ETW events; the reader process already set ORT_DISABLE_TELEMETRY
    return RapidOCR(print_verbose=False)


def read_image(image: Any) -> list[Line]:
    """The lines of a page image (a PIL image), each with its box in the image's pixels and its score."""
    given = image.size
    image = _bounded(image.convert("RGB"))
    back_to_given = given[0] / image.width  # a page scaled down for the OCR keeps its boxes on the page as given
    best: tuple[float, int, list[Run]] = (-1.0, 0, [])
    for turn in (0, 90, 180, 270):
        turned = image if turn == 0 else image.rotate(turn, expand=True)
        runs = _runs(_engine()(np.asarray(turned), use_cls=False)[0] or [])
        quality = _quality(runs)
        if quality > best[0]:
            best = (quality, turn, runs)
        if turn == 0 and len(runs) >= 2 and sum(r[2] for r in runs) / len(runs) >= _UPRIGHT_ENOUGH:
            break
    _, turn, runs = best
    # lines as read on the turned page, their boxes on the page as it was given
    return [_read(replace(line, box=tuple(v * back_to_given for v in _turned_back(line.box, turn, image.width,
                                                                                image.height))))
            for line in group_lines(runs)]


@lru_cache(maxsize=1)
def _unit_then_o() -> re.Pattern[str]:
    units = "|".join(re.escape(unit) for unit in sorted(unit_spellings(), key=len, reverse=True))
    return re.compile(rf"(\d\s*(?:{units})){_FULL_STOP_AS_O}")


def _read(line: Line) -> Line:
    """A line as read, its certain misreadings put right (a full stop after a unit read as o: 160/95mmHgo is
    160/95mmHg。; 38.3°℃ is 38.3℃; 5.0X109/L is 5.0×109/L) and its score lowered where it holds a misreading that
    cannot be put right with certainty."""
    text = line.text
    for misread, right in _CERTAIN:
        text = misread.sub(right, text)
    text = _unit_then_o().sub(r"\1。", text)
    return replace(line, text=text, confidence=_doubted(replace(line, text=text)))


def _doubted(line: Line) -> float | None:
    if line.confidence is not None and _KNOWN_CONFUSIONS.search(line.text):
        return min(line.confidence, LOW_CONFIDENCE - 0.01)
    return line.confidence


def _bounded(image: Any) -> Any:
    pixels = image.width * image.height
    if pixels <= limits.OCR_PIXELS:
        return image
    scale = (limits.OCR_PIXELS / pixels) ** 0.5
    return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))))


def _quality(runs: list[Run]) -> float:
    """Confident characters in runs that lie along the lines: a page read sideways finds tall boxes, which the
    recogniser turns and half-reads, scoring nearly as high."""
    return sum(score * len(text) for box, text, score in runs if box[2] - box[0] >= box[3] - box[1])


def _turned_back(box: Box, turn: int, width: int, height: int) -> Box:
    """A box found on the page turned by ``turn`` degrees counter-clockwise, on the page as given (width x height)."""
    back = {0: lambda x, y: (x, y), 90: lambda x, y: (width - y, x), 180: lambda x, y: (width - x, height - y),
            270: lambda x, y: (y, height - x)}[turn]
    points = [back(box[0], box[1]), back(box[2], box[3])]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return (min(xs), min(ys), max(xs), max(ys))


def _runs(boxes: list[Any]) -> list[Run]:
    """RapidOCR's boxes (four corners, text, score) as runs of text with their boxes."""
    runs = []
    for corners, text, score in boxes:
        if float(score) < _MIN_SCORE or not str(text).strip():
            continue
        xs, ys = [float(p[0]) for p in corners], [float(p[1]) for p in corners]
        runs.append(((min(xs), min(ys), max(xs), max(ys)), str(text).replace("\r", " ").replace("\n", " "), float(score)))
    return runs
