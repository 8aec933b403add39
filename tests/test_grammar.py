"""Constrained generation never silently falls back to unconstrained text."""

from __future__ import annotations

import json

import pytest

from inference.errors import GenerationError
from inference.llm.engine import Engine
from inference.llm.grammar import gbnf_from_json_schema
from inference.summary.output_grammar import generation_schema


@pytest.mark.parametrize(
    "schema",
    [{"type": "unknowntype"}, {"$ref": "#/$defs/missing"}, {"type": "string", "pattern": "[unclosed"}],
)
def test_a_schema_the_converter_cannot_handle_raises(schema: dict) -> None:
    with pytest.raises(GenerationError, match="cannot build grammar"):
        gbnf_from_json_schema(schema)


def test_an_invalid_grammar_is_refused_by_llama_cpp_not_crashing(demo_engine: Engine) -> None:
    with pytest.raises(GenerationError, match="failed to compile"):
        demo_engine.compile_grammar('root ::= "unterminated')


def test_summary_schema_requires_every_section(demo_engine: Engine) -> None:
    schema = generation_schema()
    assert set(schema["required"]) == {"chief_complaint", "present_illness", "auxiliary_exams", "diagnoses"}
    exam = schema["$defs"]["ExamItem"]
    assert set(exam["required"]) == {"name", "value", "unit"}
    grammar = demo_engine.compile_grammar(gbnf_from_json_schema(schema))
    prompt = demo_engine.template.render([{"role": "user", "content": "病历：患者咳嗽2天。请输出摘要 JSON。"}])
    result = demo_engine.generate(prompt, grammar=grammar, max_tokens=600)
    assert result.finish_reason == "stop"
    data = json.loads(result.text)  # constrained output always parses, with every section present
    assert set(data) == set(schema["required"])
