"""The grammar a summary is written under: the summary model's JSON schema, bounded per model call, with an exam
item's unit one of the units its part of the record writes (or none): the model cannot give a value a unit the
record does not (a small model copied the example's ×10^9/L onto 血红蛋白 78g/L)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from inference.llm.grammar import gbnf_from_json_schema
from inference.record.summary import StructuredSummary
from inference.record.values import find_measurements

# Items one model call may write (the grammar's bound). A long record's fused summary, the union of its
# parts', may hold more: the bound is on generation, not on the summary.
MAX_ITEMS_PER_CALL = {"auxiliary_exams": 80, "diagnoses": 30}


def generation_schema(units: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The JSON schema the output grammar is built from (pydantic's, with titles dropped); ``units``: the units
    an exam item may have, besides none (None: any text)."""
    schema = json.loads(json.dumps(StructuredSummary.model_json_schema()), object_hook=drop_titles)
    for name, limit in MAX_ITEMS_PER_CALL.items():
        schema["properties"][name]["maxItems"] = limit
    if units is not None:
        schema["$defs"]["ExamItem"]["properties"]["unit"] = {"enum": ["", *units]}
    return schema


def drop_titles(node: dict[str, Any]) -> dict[str, Any]:
    """No titles or defaults; every property required, so the model states each section (possibly empty)."""
    node.pop("title", None)
    node.pop("default", None)
    if node.get("type") == "object" and "properties" in node:
        node["required"] = list(node["properties"])
    return node


@lru_cache(maxsize=64)
def summary_gbnf(units: tuple[str, ...] | None = None) -> str:
    """The summary grammar's text, built once per set of units; each engine still checks it with llama.cpp's
    parser."""
    return schema_gbnf(json.dumps(generation_schema(units), ensure_ascii=False), units)


@lru_cache(maxsize=64)
def schema_gbnf(schema_json: str, units: tuple[str, ...] | None) -> str:
    """The grammar of a summary schema (the four sections', a template's) whose exam items may have ``units``
    (None: any text), built once per schema and set of units."""
    gbnf = gbnf_from_json_schema(json.loads(schema_json))
    # llama-cpp-python's converter lets a string hold raw control characters, which JSON forbids: a small model
    # that writes a raw newline inside a string made a draft that could not be read (CMB-Clin dev case 34).
    gbnf = gbnf.replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x00-\\x1F\\x7F]', 1)
    if units is None:
        return gbnf
    # llama-cpp-python writes an enum's non-ASCII characters as JSON escapes ("\u03bcmol/L"), which would make
    # the model spell μ as six characters: the unit rule is written again with the units as the record has them.
    choices = " | ".join(_gbnf_literal(json.dumps(unit, ensure_ascii=False)) for unit in ("", *units))
    # Every exam item definition's unit (a template's bounded list has its own, ExamItemWatch).
    return re.sub(r"^(ExamItem[A-Za-z0-9]*-unit) ::= .*$", lambda m: f"{m.group(1)} ::= {choices}", gbnf,
                  flags=re.MULTILINE)


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def record_units(text: str) -> tuple[str, ...]:
    """The units a record (part) writes after its values, as written, in order of first appearance."""
    return tuple(dict.fromkeys(text[m.unit_start:m.end].strip() for m in find_measurements(text)))
