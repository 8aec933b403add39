"""The grammar a summary is written under: the summary model's JSON schema, bounded per model call."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from inference.llm.grammar import gbnf_from_json_schema
from inference.record.summary import StructuredSummary

# Items one model call may write (the grammar's bound). A long record's fused summary, the union of its
# parts', may hold more: the bound is on generation, not on the summary.
MAX_ITEMS_PER_CALL = {"auxiliary_exams": 80, "diagnoses": 30}


def generation_schema() -> dict[str, Any]:
    """The JSON schema the output grammar is built from (pydantic's, with titles dropped)."""
    schema = json.loads(json.dumps(StructuredSummary.model_json_schema()), object_hook=_drop_titles)
    for name, limit in MAX_ITEMS_PER_CALL.items():
        schema["properties"][name]["maxItems"] = limit
    return schema


def _drop_titles(node: dict[str, Any]) -> dict[str, Any]:
    """No titles or defaults; every property required, so the model states each section (possibly empty)."""
    node.pop("title", None)
    node.pop("default", None)
    if node.get("type") == "object" and "properties" in node:
        node["required"] = list(node["properties"])
    return node


@lru_cache(maxsize=1)
def summary_gbnf() -> str:
    """The summary grammar's text: built once; each engine still checks it with llama.cpp's parser."""
    return gbnf_from_json_schema(generation_schema())
