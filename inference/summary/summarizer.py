"""Record → structured summary on a real model, grammar-constrained, streamed, cancellable."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from inference.checks.validation import validate
from inference.errors import GenerationCancelled, GenerationError
from inference.llm.engine import ChatEngine, GenerationResult, Timings
from inference.progress import READING, SUMMARIZING, RunContext
from inference.record.evidence import RunEvidence
from inference.record.prompts import PromptTemplate, load_prompt
from inference.record.summary import (
    ABSENT,
    DIAGNOSIS_SEPARATORS,
    Diagnosis,
    ExamItem,
    StructuredSummary,
    split_value_unit,
)
from inference.summary.draft_guard import guard_draft
from inference.summary.output_grammar import record_units, summary_gbnf
from inference.summary.record_parts import RecordPart, fuse, split_into_parts

PROMPT_NAME = "summary"
# Record tokens per part by model size. The demo model (0.5B) keeps to its record up to about this length
# (bench/part_length_eval.py; README); models of 3B and more get parts of LARGE_MODEL_PART_TOKENS, a
# conservative default for Qwen3-14B that hospitals can change (``part_tokens``).
SMALL_MODEL_PARAMS = 3_000_000_000
SMALL_MODEL_PART_TOKENS = 1500
LARGE_MODEL_PART_TOKENS = 8000
MIN_RETRY_PART_TOKENS = 150  # a refused part is retried in halves only when each half keeps this much record
MIN_PART_TOKENS = 200  # the smallest part a rerun asks for (the settings' lower bound too)


def retry_part_tokens(previous: int | None) -> int:
    """Record tokens per part for a rerun after a refused draft: half the refused run's parts (the CLI's
    advice and the window's 分段重新生成 alike); without a previous run, half the small model's part."""
    return max(MIN_PART_TOKENS, (previous or SMALL_MODEL_PART_TOKENS) // 2)


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
    draft: StructuredSummary | None = None  # the model's draft before the guard removed anything
    # The record range of each statement (long records) and what the guard removed, as the model wrote it.
    evidence: RunEvidence = field(default_factory=RunEvidence)
    parts: list[RecordPart] = field(default_factory=list)
    part_tokens: int = 0  # record tokens per part this run was cut into
    parts_retried: int = 0  # parts whose refused draft was summarized again in halves
    stopped: StoppedRun | None = None  # the doctor stopped the run: this is what its finished parts say


@dataclass(frozen=True)
class StoppedRun:
    """A long record's run stopped by the doctor after some parts: those parts' drafts and calls, and the
    parts still to summarize (``summarize(resume=...)`` goes on with them)."""

    finished: list[tuple[RecordPart, StructuredSummary]]
    results: list[GenerationResult]
    remaining: list[RecordPart]
    part_tokens: int
    retried: int
    prompt_version: str

    def progress_words(self) -> str:
        done, left = len(self.finished), len(self.remaining)
        return f"已完成 {done}/{done + left} 段"


class RunStopped(GenerationCancelled):
    """Stopped after at least one part finished: ``result`` is what the finished parts say (its ``stopped``
    what is left)."""

    def __init__(self, result: SummaryResult) -> None:
        done = result.stopped.progress_words() if result.stopped else ""
        super().__init__(f"已停止（{done}）/ stopped after {len(result.parts)} parts")
        self.result = result


def build_messages(record_text: str, prompt: PromptTemplate | None = None) -> list[dict[str, str]]:
    """System instructions, the example exchange when the template has one, then the record. Every
    message but the last is the same for every record (the decoder keeps that prefix cached)."""
    prompt = prompt or load_prompt(PROMPT_NAME)
    messages = [{"role": "system", "content": prompt.section("system")}]
    if "example_record" in prompt.sections:
        messages += [
            {"role": "user", "content": prompt.section("user").replace("{record}", prompt.section("example_record"))},
            {"role": "assistant", "content": prompt.section("example_summary")},
        ]
    return messages + [{"role": "user", "content": prompt.section("user").replace("{record}", record_text)}]


def part_tokens(engine: ChatEngine, override: int | None = None,
                empty_prompt: list[dict[str, str]] | None = None) -> int:
    """Record tokens per part: the setting, else what a model of this size summarizes reliably, never more
    than the context leaves after the prompt (``empty_prompt``: a template's, without a record) and the
    summary."""
    overhead = engine.count_tokens(engine.template.render(empty_prompt or build_messages("")))
    room = engine.info.n_ctx - engine.settings.max_tokens - overhead
    wanted = override or engine.settings.part_tokens or reliable_part_tokens(engine.info.n_params)
    if room <= 0:
        needed = overhead + engine.settings.max_tokens + wanted  # one whole part of the size this model is given
        where = "服务器每个槽位的" if engine.info.backend == "server" else ""
        raise GenerationError(f"{where}上下文 {engine.info.n_ctx} 太小，放不下提示词（{overhead}）和输出上限（"
                              f"{engine.settings.max_tokens}），至少需要约 {needed} / n_ctx{' per server slot' if where else ''} "
                              f"too small for prompt and output: give it {needed} or more")
    return max(1, min(room, wanted))


def reliable_part_tokens(n_params: int) -> int:
    """How much record a model keeps track of in one call (see ``SMALL_MODEL_PART_TOKENS``)."""
    return SMALL_MODEL_PART_TOKENS if 0 < n_params < SMALL_MODEL_PARAMS else LARGE_MODEL_PART_TOKENS


def summarize(
    engine: ChatEngine,
    record_text: str,
    context: RunContext | None = None,
    *,
    prompt: PromptTemplate | None = None,
    part_budget: int | None = None,
    resume: StoppedRun | None = None,
) -> SummaryResult:
    """Summarize a record: in one call when it is within the model's reliable length, else in parts at its
    section headings, fused without new words. Then the draft guard removes what the record does not say.

    Stopped after a part of a long record finished, it raises ``RunStopped`` with what is done; ``resume``
    goes on with the parts that were left."""
    prompt = prompt or load_prompt(PROMPT_NAME)
    context = context or RunContext()
    tracker = context.tracker
    budget = resume.part_tokens if resume is not None else part_tokens(engine, part_budget)
    tracker.phase(READING)
    if resume is not None:
        parts = list(resume.remaining)
    elif engine.count_tokens(record_text) <= budget:
        parts = [RecordPart(1, 0, len(record_text), record_text, ())]
    else:
        parts = split_into_parts(record_text, engine.count_tokens, budget)
    tracker.plan([engine.count_tokens(engine.template.render(build_messages(p.text, prompt))) for p in parts])

    def token(piece: str) -> None:
        tracker.token(piece)
        context.stream(piece)

    drafts: list[tuple[RecordPart, StructuredSummary]] = list(resume.finished) if resume is not None else []
    results: list[GenerationResult] = list(resume.results) if resume is not None else []
    pending = [(part, False) for part in parts]  # (part, is a retry)
    retried = resume.retried if resume is not None else 0
    number = 0
    while pending:
        part, is_retry = pending.pop(0)
        number += 1
        tracker.phase(SUMMARIZING, number)
        messages = build_messages(part.text, prompt)
        grammar = engine.compile_grammar(summary_gbnf(record_units(part.text)))  # its units, none other
        try:
            result = engine.chat(messages, grammar=grammar, fixed_messages=len(messages) - 1,
                                 on_token=token, on_prompt=tracker.prompt, cancel=context.cancel)
        except GenerationCancelled as exc:
            if not drafts:
                raise
            stopped = StoppedRun(drafts, results, [part, *(p for p, _retry in pending)], budget, retried,
                                 prompt.version)
            raise RunStopped(_fused(engine, record_text, drafts, results, budget, retried, prompt.version,
                                    stopped)) from exc
        tracker.part_done(result.completion_tokens)
        results.append(result)
        if result.finish_reason == "length":
            raise GenerationError(
                f"摘要超过输出上限 {engine.settings.max_tokens} 个 token 被截断 / summary hit max_tokens; raise it in settings"
            )
        part_draft = parse_summary(result.text)
        halves = [] if is_retry else _halves_if_refused(engine, part, part_draft)
        if halves:
            # This part's draft is not of its text (a small model lost track and wrote the prompt's example):
            # summarize it again once, in two halves, instead of refusing the whole record for it.
            retried += 1
            pending[0:0] = [(half, True) for half in halves]
            tracker.add_parts([engine.count_tokens(engine.template.render(build_messages(h.text, prompt)))
                               for h in halves])
            continue
        drafts.append((part, part_draft))
    return _fused(engine, record_text, drafts, results, budget, retried, prompt.version)


def _fused(engine: ChatEngine, record_text: str, drafts: list[tuple[RecordPart, StructuredSummary]],
                    results: list[GenerationResult], budget: int, retried: int, prompt_version: str,
                    stopped: StoppedRun | None = None) -> SummaryResult:
    """The parts' drafts fused in record order and guarded against the record: the run's result (a stopped
    run's: what its finished parts say)."""
    drafts = sorted(drafts, key=lambda pair: pair[0].start)
    parts = [replace(part, index=i) for i, (part, _draft) in enumerate(drafts, 1)]
    drafts = list(zip(parts, [d for _part, d in drafts]))
    fused, scopes = fuse(drafts) if len(drafts) > 1 else (drafts[0][1], {})
    draft = normalize_summary(fused)
    summary, removals, scopes = guard_draft(draft, record_text, scopes)
    return SummaryResult(
        summary=summary,
        prompt_version=prompt_version,
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
        draft=draft,
        evidence=RunEvidence(scopes, tuple(removals)),
        parts=parts,
        part_tokens=budget,
        parts_retried=retried,
        stopped=stopped,
    )


def _halves_if_refused(engine: ChatEngine, part: RecordPart, draft: StructuredSummary) -> list[RecordPart]:
    """The part in two halves when its guarded draft would be refused (R1/R2) and it can be split."""
    guarded, removals, _ = guard_draft(draft, part.text)
    if not validate(guarded, part.text, evidence=RunEvidence(removals=tuple(removals))).rejected:
        return []
    tokens = engine.count_tokens(part.text)
    if tokens < 2 * MIN_RETRY_PART_TOKENS:
        return []
    halves = split_into_parts(part.text, engine.count_tokens, tokens // 2 + 1)
    if len(halves) < 2:
        return []
    return [replace(h, start=part.start + h.start, end=part.start + h.end) for h in halves]


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
    """Small models put the unit inside ``value`` (and sometimes repeat it in ``unit``), or cut it across the
    two (0.75mmol + mmol/L): separate them, as written, but only when what follows the number is a known unit
    (never a sentence)."""
    value, unit = item.value.strip(), item.unit.strip()
    cut = next((k for k in range(len(unit) - 1, 0, -1) if value.endswith(unit[:k])), 0)
    if cut and re.search(r"\d\s*$", value[:-cut]):
        value = value[:-cut].rstrip()
    split = split_value_unit(value)
    if split is not None and (not unit or unit == value or split[1].endswith(unit)):
        return ExamItem(name=item.name.strip(), value=split[0], unit=split[1])
    return ExamItem(name=item.name.strip(), value=value, unit="" if unit == value else unit)
