"""Record → structured summary on a real model, grammar-constrained, streamed, cancellable."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from inference.chunking import merge_summaries, split_record
from inference.engine import Engine, GenerationResult, TokenCallback
from inference.errors import GenerationError
from inference.grammar import gbnf_from_json_schema
from inference.prompts import load_prompt
from inference.summary_schema import (
    ABSENT,
    DIAGNOSIS_CUES,
    DIAGNOSIS_SEPARATORS,
    Diagnosis,
    ExamItem,
    StructuredSummary,
    generation_schema,
    split_value_unit,
)

ProgressCallback = Callable[[str], None]
PROMPT_NAME = "summary"
FIXED_MESSAGES = 3  # system, example record, example summary: the same for every record



@dataclass
class Timings:
    load_s: float
    ttft_s: float
    total_s: float
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_evaluated: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)  # one per model call: summary parts, ICD rounds

    @property
    def tokens_per_s(self) -> float:
        decode_s = self.total_s - self.ttft_s
        return self.completion_tokens / decode_s if decode_s > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "load_s": round(self.load_s, 3),
            "ttft_s": round(self.ttft_s, 3),
            "total_s": round(self.total_s, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": round(self.tokens_per_s, 1),
            "prompt_tokens_evaluated": self.prompt_tokens_evaluated,
            "calls": self.calls,
        }


def call_timing(kind: str, result: GenerationResult) -> dict[str, Any]:
    """One model call as recorded in the timings: how much of the prompt was evaluated, how fast."""
    return {
        "kind": kind,
        "prompt_tokens": result.prompt_tokens,
        "prompt_tokens_evaluated": result.prompt_tokens_evaluated,
        "completion_tokens": result.completion_tokens,
        "ttft_s": round(result.ttft_s, 3),
        "total_s": round(result.total_s, 3),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "grammar": result.picks.as_dict(),
        "drafts": result.drafts.as_dict(),
    }


@dataclass
class SummaryResult:
    summary: StructuredSummary
    prompt_version: str
    model: dict[str, Any]
    timings: Timings
    raw_output: str
    extra: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def summary_gbnf() -> str:
    """The summary grammar's text: built once; each engine still checks it with llama.cpp's parser."""
    return gbnf_from_json_schema(generation_schema())


def build_messages(record_text: str) -> list[dict[str, str]]:
    prompt = load_prompt(PROMPT_NAME)
    return [
        {"role": "system", "content": prompt.section("system")},
        {"role": "user", "content": prompt.section("user").replace("{record}", prompt.section("example_record"))},
        {"role": "assistant", "content": prompt.section("example_summary")},
        {"role": "user", "content": prompt.section("user").replace("{record}", record_text)},
    ]


def summarize(
    engine: Engine,
    record_text: str,
    *,
    on_token: TokenCallback | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SummaryResult:
    """One call for a record that fits the context; chunks merged without new words for one that does not."""
    prompt = load_prompt(PROMPT_NAME)
    grammar = engine.compile_grammar(summary_gbnf())
    overhead = engine.count_tokens(engine.template.render(build_messages("")))
    budget = engine.info.n_ctx - engine.settings.max_tokens - overhead

    def fits(text: str) -> bool:
        return engine.count_tokens(text) <= budget

    if budget <= 0:
        raise GenerationError(f"上下文 {engine.info.n_ctx} 太小，放不下提示词和输出 / n_ctx too small for prompt and output")
    chunks = [record_text] if fits(record_text) else split_record(record_text, fits)
    parts: list[StructuredSummary] = []
    results: list[GenerationResult] = []
    for index, chunk in enumerate(chunks, 1):
        if on_progress:
            step = "生成摘要 / writing summary"
            on_progress(step if len(chunks) == 1 else f"分段摘要 {index}/{len(chunks)} / summarizing part {index}")
        result = engine.chat(build_messages(chunk), grammar=grammar, fixed_messages=FIXED_MESSAGES,
                             on_token=on_token, cancel=cancel)
        if result.finish_reason == "length":
            raise GenerationError(
                f"摘要超过输出上限 {engine.settings.max_tokens} 个 token 被截断 / summary hit max_tokens; raise it in settings"
            )
        parts.append(parse_summary(result.text))
        results.append(result)
    summary = parts[0] if len(parts) == 1 else normalize_summary(merge_summaries(parts))
    removed: list[str] = []
    if summary.diagnoses and not DIAGNOSIS_CUES.search(record_text):
        # The record states no diagnosis: one in the draft would be the model's invention.
        removed = [d.name for d in summary.diagnoses]
        summary = summary.model_copy(update={"diagnoses": []})
    return SummaryResult(
        summary=summary,
        prompt_version=prompt.version,
        model=engine.info.as_dict(),
        timings=Timings(
            load_s=engine.info.load_s,
            ttft_s=results[0].ttft_s,
            total_s=sum(r.total_s for r in results),
            prompt_tokens=sum(r.prompt_tokens for r in results),
            completion_tokens=sum(r.completion_tokens for r in results),
            prompt_tokens_evaluated=sum(r.prompt_tokens_evaluated for r in results),
            calls=[call_timing("summary" if len(results) == 1 else f"summary part {i}", r)
                   for i, r in enumerate(results, 1)],
        ),
        raw_output="\n".join(r.text for r in results),
        extra={"chunks": len(chunks), "removed_diagnoses": removed},
    )


def parse_summary(text: str) -> StructuredSummary:
    try:
        return normalize_summary(StructuredSummary.model_validate(json.loads(text)))
    except (ValueError, ValidationError) as exc:
        first_line = str(exc).splitlines()[0]
        raise GenerationError(f"模型输出不是有效的摘要 JSON / model output is not a valid summary: {first_line}") from exc


def normalize_summary(summary: StructuredSummary) -> StructuredSummary:
    """Empty text sections become 原文未记载; one diagnosis per entry; blank items dropped."""
    diagnoses: list[Diagnosis] = []
    for diagnosis in summary.diagnoses:
        for name in DIAGNOSIS_SEPARATORS.split(diagnosis.name):
            name = name.strip(" 。.")
            if name and name != ABSENT and all(d.name != name for d in diagnoses):
                diagnoses.append(Diagnosis(name=name))
    return StructuredSummary(
        chief_complaint=summary.chief_complaint.strip() or ABSENT,
        present_illness=summary.present_illness.strip() or ABSENT,
        auxiliary_exams=[
            _split_value_unit(item) for item in summary.auxiliary_exams if item.name.strip() and item.name != ABSENT
        ],
        diagnoses=diagnoses,
    )


def _split_value_unit(item: ExamItem) -> ExamItem:
    """Small models put the unit inside ``value`` (and sometimes repeat it in ``unit``): separate them,
    as written, but only when what follows the number is a known unit (never a sentence)."""
    value, unit = item.value.strip(), item.unit.strip()
    split = split_value_unit(value)
    if split is not None and (not unit or unit == value or split[1].endswith(unit)):
        return ExamItem(name=item.name.strip(), value=split[0], unit=split[1])
    return ExamItem(name=item.name.strip(), value=value, unit="" if unit == value else unit)
