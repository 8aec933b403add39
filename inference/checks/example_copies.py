"""R1: a draft that repeats the prompt's example patient instead of summarizing the record."""

from __future__ import annotations

import json
from functools import lru_cache

from inference.record.grounding import split_sentences
from inference.record.prompts import SUMMARY_PROMPT, load_prompt
from inference.record.summary import ABSENT, StructuredSummary
from inference.record.values import fold


@lru_cache(maxsize=1)
def _example() -> tuple[str, frozenset[str]]:
    """The shipped prompt's example (record and summary, folded) and its statements; empty without one."""
    prompt = load_prompt(SUMMARY_PROMPT)
    if "example_summary" not in prompt.sections:
        return "", frozenset()
    text = fold(prompt.section("example_record") + "\n" + prompt.section("example_summary"))
    data = json.loads(prompt.section("example_summary"))
    statements = [data.get("chief_complaint", "")] + [d["name"] for d in data.get("diagnoses", [])]
    statements += [f"{i['name']} {i['value']}" for i in data.get("auxiliary_exams", [])]
    return text, frozenset(fold(s) for s in statements if s)


def example_copies(summary: StructuredSummary, folded_source: str) -> list[str]:
    """Statements of the draft that stand in the prompt's example (or are its 【…】 placeholders) and not in
    the record: the model wrote the example patient, not this one."""
    example_text, example_statements = _example()
    copies = []
    candidates = [summary.chief_complaint, *[d.name for d in summary.diagnoses],
                  *[f"{i.name} {i.value}" for i in summary.auxiliary_exams],
                  *[sentence for _o, sentence in split_sentences(summary.present_illness)]]
    for text in candidates:
        folded = fold(text).strip(" 。")
        if not folded or folded == ABSENT or folded in folded_source:
            continue
        if "【" in folded or folded in example_statements or (len(folded) >= 8 and folded in example_text):
            copies.append(text.strip())
    return copies
