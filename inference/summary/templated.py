"""Record → a summary written with a template: the template's grammar and prompt, generated like the four
sections (grammar-constrained, streamed, cancellable, a long record in parts), then guarded and reviewed by
kind. The default template (病历摘要) is written by ``summarizer`` with its own prompt and example."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from inference.errors import GenerationError
from inference.llm.engine import ChatEngine, GenerationResult, Timings
from inference.progress import READING, SUMMARIZING, RunContext
from inference.record.evidence import Removal, RunEvidence
from inference.record.prompts import TEMPLATED_PROMPT, PromptTemplate, load_prompt
from inference.record.summary import ABSENT, Diagnosis, ExamItem, StructuredSummary
from inference.summary.output_grammar import drop_titles, record_units, schema_gbnf
from inference.summary.partial_output import completed
from inference.summary.record_parts import RecordPart, split_into_parts
from inference.summary.summarizer import call_timing, normalize_summary, part_tokens
from inference.summary.template_guard import guard_templated
from inference.templates.content import (
    DatedEvent,
    Medication,
    TemplatedSummary,
    content_of,
    example_content,
    item_text,
)
from inference.templates.spec import KINDS, SummaryTemplate

_ITEM_SCHEMAS = {"values": ExamItem, "diagnoses": Diagnosis, "medications": Medication, "dates": DatedEvent}


def template_schema(template: SummaryTemplate, units: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON schema a template's output grammar is built from: its sections in order, each in its kind's
    shape and bound; an exam item's unit one of ``units`` or none (None: any text). A list with ``max_chars``
    gets its own item definition whose text fields share the item's part of it."""
    definitions: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for spec in template.sections:
        if spec.kind == "text":  # bounded in the grammar: a small model that loops stops at the bound, not at
            properties[spec.id] = {"type": "string", "maxLength": spec.char_bound}  # max_tokens (no summary)
            continue
        model = _ITEM_SCHEMAS[spec.kind]
        item = json.loads(json.dumps(model.model_json_schema()), object_hook=drop_titles)
        name = model.__name__
        if spec.item_chars is not None:
            name += "".join(word.capitalize() for word in spec.id.split("_"))
            for field_name, share in _ITEM_SHARES[spec.kind].items():
                field = item["properties"][field_name]
                field["maxLength"] = min(field.get("maxLength", 10_000), max(2, int(spec.item_chars * share)))
        if units is not None and spec.kind == "values":
            item["properties"]["unit"] = {"enum": ["", *units]}
        definitions[name] = item
        properties[spec.id] = {"type": "array", "items": {"$ref": f"#/$defs/{name}"}, "maxItems": spec.item_bound}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": list(properties)}
    return {**schema, "$defs": definitions} if definitions else schema


# How a list item's share of its section's max_chars is split among its text fields (a unit is one of the
# record's, not bounded here).
_ITEM_SHARES = {"values": {"name": 0.5, "value": 0.35}, "diagnoses": {"name": 1.0},
                "medications": {"drug": 0.4, "dose": 0.2, "route": 0.15, "frequency": 0.25},
                "dates": {"date": 0.5, "event": 0.5}}


def template_gbnf(template: SummaryTemplate, units: tuple[str, ...] | None = None) -> str:
    """The template's grammar, built once per template content and set of units."""
    return schema_gbnf(json.dumps(template_schema(template, units), ensure_ascii=False), units)


def template_prompt(template: SummaryTemplate) -> tuple[PromptTemplate, str]:
    """The prompt with the template's sections filled in, and the system message it makes."""
    prompt = load_prompt(TEMPLATED_PROMPT)
    lines = []
    for spec in template.sections:
        bound = f"，不超过 {spec.char_bound} 字" if spec.kind == "text" else f"，最多 {spec.item_bound} 项" + (
            f"，每项不超过 {spec.item_chars} 字" if spec.item_chars else "")
        lines.append(f"- {spec.id}（{spec.heading}；{KINDS[spec.kind]}{bound}）：{spec.instructions}")
    system = prompt.section("system").replace("{template_name}", template.name).replace("{sections}", "\n".join(lines))
    return prompt, system


def template_messages(template: SummaryTemplate, record_text: str) -> list[dict[str, str]]:
    """The system message and, when the template's sections have examples, the example exchange (the same for
    every record with this template: the decoder keeps them cached), then the record."""
    prompt, system = template_prompt(template)
    user = prompt.section("user").replace("{template_name}", template.name)
    messages = [{"role": "system", "content": system}]
    if any(spec.example for spec in template.sections):
        example = TemplatedSummary(template, {spec.id: example_content(spec) for spec in template.sections})
        messages += [{"role": "user", "content": user.replace("{record}", prompt.section("example_record"))},
                     {"role": "assistant", "content": json.dumps(example.output_json(), ensure_ascii=False)}]
    return messages + [{"role": "user", "content": user.replace("{record}", record_text)}]


def prompt_version(template: SummaryTemplate) -> str:
    """What a run records as its prompt: the prompt's version and the template's id, version and hash."""
    return f"{load_prompt(TEMPLATED_PROMPT).version}+{template.id}@{template.version}#{template.content_hash[:8]}"


def parse_templated(template: SummaryTemplate, text: str) -> TemplatedSummary:
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return TemplatedSummary(template, {spec.id: _normalized(content_of(spec, data.get(spec.id)))
                                           for spec in template.sections})
    except (ValueError, RecursionError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GenerationError(f"模型输出不是有效的摘要 JSON / model output is not a valid summary: {first_line}") from exc


def _normalized(content: Any) -> Any:
    """Exam items and diagnoses as the four sections' are: a unit cut out of a value, one diagnosis an entry."""
    if not content or not isinstance(content, list) or not isinstance(content[0], (ExamItem, Diagnosis)):
        return content
    is_exam = isinstance(content[0], ExamItem)
    classic = normalize_summary(StructuredSummary(chief_complaint=ABSENT, present_illness=ABSENT,
                                                  auxiliary_exams=content if is_exam else [],
                                                  diagnoses=[] if is_exam else content))
    return classic.auxiliary_exams if is_exam else classic.diagnoses


@dataclass
class TemplatedResult:
    summary: TemplatedSummary  # guarded: what the doctor is shown
    draft: TemplatedSummary  # as the model wrote it (parts fused)
    prompt_version: str
    model: dict[str, Any]
    timings: Timings
    raw_output: str
    evidence: RunEvidence = field(default_factory=RunEvidence)
    parts: list[RecordPart] = field(default_factory=list)
    part_tokens: int = 0
    stopped: None = None  # stopped as a whole, a templated run keeps nothing (``SummaryResult.stopped``)


def summarize_with_template(engine: ChatEngine, template: SummaryTemplate, record_text: str,
                            context: RunContext | None = None, *, part_budget: int | None = None) -> TemplatedResult:
    """Summarize a record with ``template``: in one call, or in parts at its section headings (each part's
    draft guarded against its own part of the record, then fused: texts in order, list items once)."""
    context = context or RunContext()
    tracker = context.tracker
    budget = part_tokens(engine, part_budget, template_messages(template, ""))
    tracker.phase(READING)
    if engine.count_tokens(record_text) <= budget:
        parts = [RecordPart(1, 0, len(record_text), record_text, ())]
    else:
        parts = split_into_parts(record_text, engine.count_tokens, budget)
    tracker.plan([engine.count_tokens(engine.template.render(template_messages(template, p.text))) for p in parts])

    def token(piece: str) -> None:
        tracker.token(piece)
        context.stream(piece)

    results: list[GenerationResult] = []
    drafts: list[TemplatedSummary] = []
    guarded: list[TemplatedSummary] = []
    removals: list[Removal] = []
    for number, part in enumerate(parts, 1):
        tracker.phase(SUMMARIZING, number)
        messages = template_messages(template, part.text)
        grammar = engine.compile_grammar(template_gbnf(template, record_units(part.text)))
        result = engine.chat(messages, grammar=grammar, fixed_messages=len(messages) - 1, on_token=token,
                             on_prompt=tracker.prompt, cancel=context.cancel)
        tracker.part_done(result.completion_tokens)
        results.append(result)
        if result.finish_reason == "length":  # a small model that loops: what it finished is kept, and said
            draft, cut = _cut_draft(template, result.text, engine.settings.max_tokens)
            removals.append(cut)
        else:
            draft = parse_templated(template, result.text)
        drafts.append(draft)
        kept, removed = guard_templated(draft, part.text)
        guarded.append(kept)
        removals += removed
    calls = [call_timing("summary" if len(results) == 1 else f"summary part {i}", r) for i, r in enumerate(results, 1)]
    return TemplatedResult(
        summary=fuse_templated(template, guarded), draft=fuse_templated(template, drafts),
        prompt_version=prompt_version(template), model=engine.info.as_dict(),
        timings=Timings(load_s=engine.info.load_s, ttft_s=results[0].ttft_s, total_s=sum(r.total_s for r in results),
                        prompt_tokens=sum(r.prompt_tokens for r in results),
                        completion_tokens=sum(r.completion_tokens for r in results),
                        prompt_tokens_evaluated=sum(r.prompt_tokens_evaluated for r in results), calls=calls),
        raw_output="\n".join(r.text for r in results), evidence=RunEvidence(removals=tuple(removals)),
        parts=parts, part_tokens=budget)


def _cut_draft(template: SummaryTemplate, text: str, max_tokens: int) -> tuple[TemplatedSummary, Removal]:
    """The sections a draft cut at ``max_tokens`` finished (repeated list items once), and the removal that
    tells the doctor the rest was not written."""
    data = completed(text)
    if not isinstance(data, dict) or not data:
        raise GenerationError(f"摘要超过输出上限 {max_tokens} 个 token 被截断 / summary hit max_tokens; raise it in settings")
    written = [spec for spec in template.sections if spec.id in data]
    last = written[-1] if written else template.sections[0]
    try:
        draft = parse_templated(template, json.dumps(data, ensure_ascii=False))
    except GenerationError:
        raise GenerationError(f"摘要超过输出上限 {max_tokens} 个 token 被截断 / summary hit max_tokens") from None
    missing = [spec.heading for spec in template.sections if spec.id not in data]
    rest = f"，其后的{'、'.join(missing)}未生成" if missing else ""
    return draft, Removal("S5", last.id, text[-40:], f"输出达到上限 {max_tokens} 个 token 被截断：【{last.heading}】可能不完整{rest}")


def fuse_templated(template: SummaryTemplate, drafts: list[TemplatedSummary]) -> TemplatedSummary:
    """The parts' summaries as one, without new words: a text section's parts one after the other, a list's
    items once each in order of first appearance (a one-item list, 入院日期, keeps the first part's)."""
    sections: dict[str, Any] = {}
    for spec in template.sections:
        if spec.kind == "text":
            texts = [t.strip() for d in drafts if (t := d.text(spec.id).strip()) and t != ABSENT]
            sections[spec.id] = "".join(t if re.search(r"[。；;！？!?]$", t) else t + "。" for t in texts[:-1]) \
                + (texts[-1] if texts else "") or ABSENT
            continue
        items, seen = [], set()
        for item in (item for draft in drafts for item in draft.items(spec.id)):
            if item_text(item) not in seen:
                seen.add(item_text(item))
                items.append(item)
        sections[spec.id] = items[:1] if spec.item_bound == 1 else items
    return TemplatedSummary(template, sections)
