"""Progress of one record through the pipeline, for the CLI and the desktop alike.

A ``ProgressTracker`` turns what the engine reports (prompt batches evaluated, tokens generated) and the
pipeline's phases into ``Progress`` snapshots: phase, part i of n, tokens processed of the expected total,
elapsed and remaining time. Remaining time comes from the speeds measured so far in this run (prompt
tokens per second and generated tokens per second apart), so it is absent until both have been seen.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from inference.errors import GenerationCancelled

READING, SUMMARIZING, CODING, CHECKING = "reading", "summarizing", "coding", "checking"
PHASE_NAMES = {READING: "读取病历", SUMMARIZING: "生成摘要", CODING: "ICD 编码", CHECKING: "核对原文"}
EXPECTED_OUTPUT_TOKENS = 350  # a part's summary before any part has finished (the sample's is ~300)
EMIT_EVERY_S = 0.5
MIN_TOKENS_FOR_ESTIMATE = 16  # a speed from fewer generated tokens swings by minutes
# The estimate shown moves a fifth of the way to a new one, and by at most a quarter of what was left: a long
# record's parts differ in length, and an estimate that jumps 33:25 → 17:28 → 21:30 is worse than none.
ESTIMATE_BLEND = 0.2
ESTIMATE_STEP = 0.25


@dataclass(frozen=True)
class Progress:
    phase: str
    part: int = 0
    parts: int = 0
    tokens_done: int = 0
    tokens_total: int = 0
    elapsed_s: float = 0.0
    remaining_s: float | None = None
    detail: str = ""

    @property
    def fraction(self) -> float:
        return min(1.0, self.tokens_done / self.tokens_total) if self.tokens_total else 0.0

    def line(self) -> str:
        """One line a doctor can read: 生成摘要 第 2/5 段 · 完成 27% · 已用 1:20 · 预计还需 2:10 (no tokens: that
        word is for IT; the counts are in the run's timings)."""
        bits = [PHASE_NAMES.get(self.phase, self.phase)]
        if self.parts > 1 and self.phase == SUMMARIZING:
            bits[0] += f" 第 {self.part}/{self.parts} 段"
        if self.detail:
            bits[0] += f"（{self.detail}）"
        if self.tokens_total:
            bits.append(f"完成 {min(100, round(100 * self.tokens_done / self.tokens_total))}%")
        bits.append(f"已用 {clock(self.elapsed_s)}")
        if self.remaining_s is not None:
            bits.append(f"预计还需 {clock(self.remaining_s)}")
        return " · ".join(bits)


ProgressCallback = Callable[[Progress], None]


def duration_words(seconds: float) -> str:
    """A run's time as a doctor reads it: 1.2 秒 under a minute, else 3:05."""
    return f"{seconds:.1f} 秒" if seconds < 60 else clock(seconds)


def clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressTracker:
    """Counts the work of one run and reports it, at most twice a second apart from phase changes."""

    def __init__(self, on_progress: ProgressCallback | None) -> None:
        self._on_progress = on_progress
        self.started = time.perf_counter()
        self.phase_name = READING
        self.part = 0
        self.parts = 0
        self.detail = ""
        self._prompt_left: list[int] = []  # prompt tokens still to evaluate, per part
        self._prompt_done = 0
        self._prompt_s = 0.0
        self._generated = 0
        self._generated_s = 0.0
        self._outputs: list[int] = []  # tokens each finished part generated
        self._mark = self.started
        self._last_emit = 0.0
        self._shown: tuple[float, float] | None = None  # (remaining shown, when)

    def plan(self, prompt_tokens: list[int]) -> None:
        """The parts to come, by prompt tokens each."""
        self._prompt_left = list(prompt_tokens)
        self.parts = len(prompt_tokens)

    def add_parts(self, prompt_tokens: list[int]) -> None:
        """More parts, next in line (a refused part summarized again in halves)."""
        self._prompt_left[self.part:self.part] = list(prompt_tokens)
        self.parts += len(prompt_tokens)

    def phase(self, name: str, part: int = 0, detail: str = "") -> None:
        self.phase_name, self.detail = name, detail
        if part:
            self.part = part
        self._mark = time.perf_counter()
        self._emit(force=True)

    def prompt(self, done: int, total: int) -> None:
        """The engine evaluated ``done`` of ``total`` prompt tokens of the current part."""
        now = time.perf_counter()
        index = self.part - 1
        if 0 <= index < len(self._prompt_left):
            step = (self._prompt_left[index] - (total - done)) if total else 0
            if step > 0:
                self._prompt_done += step
                self._prompt_left[index] -= step
                self._prompt_s += now - self._mark
        self._mark = now
        self._emit()

    def token(self, _piece: str = "") -> None:
        now = time.perf_counter()
        self._generated += 1
        self._generated_s += now - self._mark
        self._mark = now
        self._emit()

    def part_done(self, completion_tokens: int) -> None:
        index = self.part - 1
        if 0 <= index < len(self._prompt_left):  # prompt tokens served from the cache count as done
            self._prompt_done += self._prompt_left[index]
            self._prompt_left[index] = 0
        self._outputs.append(completion_tokens)

    def snapshot(self) -> Progress:
        expected = (sum(self._outputs) / len(self._outputs)) if self._outputs else EXPECTED_OUTPUT_TOKENS
        parts_left = max(0, self.parts - len(self._outputs))
        current_output = self._generated - sum(self._outputs)
        output_left = max(0.0, parts_left * expected - current_output)
        prompt_left = sum(self._prompt_left)
        done = self._prompt_done + self._generated
        total = done + prompt_left + round(output_left)
        remaining = None
        if self._prompt_s > 0 and self._generated_s > 0 and self._prompt_done \
                and self._generated >= MIN_TOKENS_FOR_ESTIMATE:
            remaining = (prompt_left / (self._prompt_done / self._prompt_s)
                         + output_left / (self._generated / self._generated_s))
        now = time.perf_counter()
        if remaining is not None and self.phase_name == SUMMARIZING:
            remaining = self._smoothed(remaining, now)
        return Progress(self.phase_name, self.part, self.parts, done, total if self.parts else 0,
                        now - self.started, remaining if self.phase_name == SUMMARIZING else None, self.detail)

    def _smoothed(self, estimate: float, now: float) -> float:
        if self._shown is None:
            self._shown = (estimate, now)
            return estimate
        shown, at = self._shown
        expected = max(0.0, shown - (now - at))  # the last estimate, counted down
        blended = expected + ESTIMATE_BLEND * (estimate - expected)
        step = ESTIMATE_STEP * max(expected, 1.0)
        smoothed = min(max(blended, expected - step), expected + step)
        self._shown = (smoothed, now)
        return smoothed

    def _emit(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self._on_progress is None or (not force and now - self._last_emit < EMIT_EVERY_S):
            return
        self._last_emit = now
        self._on_progress(self.snapshot())



@dataclass
class RunContext:
    """What a caller hands a run, in one object: where progress and streamed text go, and the stop signal.
    The run's tracker lives here, so parts, retries and ICD rounds report into one count."""

    on_progress: ProgressCallback | None = None
    on_token: Callable[[str], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.tracker = ProgressTracker(self.on_progress)

    def stream(self, piece: str) -> None:
        """Text as the model writes it (the summary's tokens are also counted by the tracker)."""
        if self.on_token is not None:
            self.on_token(piece)

    def stop_if_cancelled(self) -> None:
        if self.cancel.is_set():
            raise GenerationCancelled("已停止 / generation stopped")
