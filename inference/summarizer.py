"""Record → structured summary on a real model, grammar-constrained, streamed, cancellable."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from inference.chunking import merge_summaries, split_record
from inference.engine import Engine, GenerationResult, TokenCallback
from inference.errors import GenerationError
from inference.grammar import gbnf_from_json_schema
from inference.prompts import load_prompt
from inference.summary_schema import ABSENT, Diagnosis, ExamItem, StructuredSummary, generation_schema
from inference.validation import DIAGNOSIS_CUES

ProgressCallback = Callable[[str], None]
PROMPT_NAME = "summary"

# "4500 pg/mL" written into the value field: number (with comparator) first, the rest is the unit.
_VALUE_WITH_UNIT = re.compile(
    r"^\s*([<>≤≥＜＞]?\s*[0-9０-９]+(?:[.．][0-9０-９]+)?(?:\s*[/\-~～]\s*[0-9０-９]+(?:[.．][0-9０-９]+)?)?)\s*(\S.*?)\s*$"
)
# A diagnosis entry holding several diagnoses ("A,B；C") is split: one diagnosis per entry.
_DIAGNOSIS_SEPARATORS = re.compile(r"[,，;；、\n]+")


@dataclass
class Timings:
    load_s: float
    ttft_s: float
    total_s: float
    prompt_tokens: int
    completion_tokens: int
    tokens_per_s: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "load_s": round(self.load_s, 3),
            "ttft_s": round(self.ttft_s, 3),
            "total_s": round(self.total_s, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": round(self.tokens_per_s, 1),
        }


@dataclass
class SummaryResult:
    summary: StructuredSummary
    prompt_version: str
    model: dict[str, Any]
    timings: Timings
    raw_output: str
    extra: dict[str, Any] = field(default_factory=dict)


class SummaryGrammarCache:
    """The summary grammar is built once per engine (llama.cpp parses it on every request anyway)."""

    def __init__(self) -> None:
        self._grammar: Any = None
        self._engine_id: int | None = None

    def get(self, engine: Engine) -> Any:
        if self._grammar is None or self._engine_id != id(engine):
            self._grammar = engine.compile_grammar(gbnf_from_json_schema(generation_schema()))
            self._engine_id = id(engine)
        return self._grammar


_grammar_cache = SummaryGrammarCache()


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
    grammar = _grammar_cache.get(engine)
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
        result = engine.chat(build_messages(chunk), grammar=grammar, on_token=on_token, cancel=cancel)
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
    total_s = sum(r.total_s for r in results)
    completion = sum(r.completion_tokens for r in results)
    decode_s = total_s - results[0].ttft_s
    return SummaryResult(
        summary=summary,
        prompt_version=prompt.version,
        model=engine.info.as_dict(),
        timings=Timings(
            load_s=engine.info.load_s,
            ttft_s=results[0].ttft_s,
            total_s=total_s,
            prompt_tokens=sum(r.prompt_tokens for r in results),
            completion_tokens=completion,
            tokens_per_s=completion / decode_s if decode_s > 0 else 0.0,
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
        for name in _DIAGNOSIS_SEPARATORS.split(diagnosis.name):
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




_UNIT_LIKE = re.compile(r"^[A-Za-zμµ%℃°/×xX^*·.0-9⁰-⁹]{1,20}$|^(次/分|次/分钟|岁|mmHg)$")


def _split_value_unit(item: ExamItem) -> ExamItem:
    """Small models put the unit inside ``value`` (and sometimes repeat it in ``unit``): separate them,
    but only when what follows the number really is a unit (never a sentence)."""
    value, unit = item.value.strip(), item.unit.strip()
    match = _VALUE_WITH_UNIT.match(value)
    if match and _UNIT_LIKE.match(match.group(2)) and (not unit or unit == value or match.group(2).endswith(unit)):
        return ExamItem(name=item.name.strip(), value=match.group(1).strip(), unit=match.group(2))
    if unit == value:
        unit = ""
    return ExamItem(name=item.name.strip(), value=value, unit=unit)
