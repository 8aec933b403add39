"""Build a GBNF grammar from a JSON schema, failing loudly.

llama-cpp-python's ``response_format`` silently drops a schema it cannot convert; here any
conversion problem raises GenerationError so a summary is never generated unconstrained.
"""

from __future__ import annotations

import json
from typing import Any

from inference.errors import GenerationError
from inference.llm.native import llama_cpp


def gbnf_from_json_schema(schema: dict[str, Any]) -> str:
    try:
        gbnf = llama_cpp().llama_grammar.json_schema_to_gbnf(json.dumps(schema, ensure_ascii=False))
    except Exception as exc:  # the converter raises bare Exceptions and ValueErrors
        raise GenerationError(f"无法由 JSON Schema 构建约束语法 / cannot build grammar from schema: {exc}") from exc
    if "root ::=" not in gbnf:
        raise GenerationError("约束语法缺少 root 规则 / generated grammar has no root rule")
    return gbnf
