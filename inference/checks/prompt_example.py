"""The prompt's example patient in a draft: copied whole (R1, the draft is refused) or in pieces (a remnant,
removed by the draft guard).

A small model that loses track of a long record writes the example's patient instead — sometimes word for
word, sometimes paraphrased and mixed with the record (受凉后出现发热，伴咳嗽咳黄痰 in a record that never says
咳黄痰). A statement is a remnant when more of it stands in the example than in its part of the record: the
record wins every tie, so a record that shares the example's words (发热咳嗽3天) keeps them.
"""

from __future__ import annotations

import json
from functools import lru_cache

from inference.record.grounding import char_pairs, content, pair_share, split_sentences
from inference.record.prompts import SUMMARY_PROMPT, load_prompt
from inference.record.summary import ABSENT, StructuredSummary
from inference.record.values import fold

# A remnant shares at least this share of its character pairs with the example, and more than with the record;
# and a run of this many characters of it stands in the example and not in the record (one shared word is not
# the example patient: 咳嗽 is in half the records there are).
REMNANT_SHARE = 0.5
REMNANT_RUN = 3


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


@lru_cache(maxsize=1)
def _example_content() -> str:
    return content(_example()[0])


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


def example_remnant(statement: str, record_part: str) -> str | None:
    """The piece of ``statement`` that comes from the example and not from ``record_part`` (both as written),
    when the statement is closer to the example than to the record; else None."""
    example = _example_content()
    text = content(statement)
    if not example or len(text) < 2 or text == ABSENT:
        return None
    part = content(record_part)
    pairs = char_pairs(text)
    in_example, in_record = pair_share(pairs, example), pair_share(pairs, part)
    if in_example < REMNANT_SHARE or in_example <= in_record:
        return None
    for length in range(len(text), REMNANT_RUN - 1, -1):  # the longest piece of the example the record lacks
        for start in range(len(text) - length + 1):
            piece = text[start:start + length]
            if piece in example and piece not in part and not piece.replace(".", "").isdigit():
                return piece
    return None


def example_name(name: str, record_part: str) -> bool:
    """An exam item named as the example names its tests (WBC, 胸部CT) where the record names them otherwise
    (白细胞, 胸片): the example's word, not the record's."""
    text = content(name)
    return len(text) >= 2 and not text.isdigit() and text in _example_content() and text not in content(record_part)
