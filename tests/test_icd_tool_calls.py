"""The model's function calls: parsing, errors back to the model, rejection of codes outside the table,
and the whole loop on the real demo model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.errors import GenerationError
from inference.icd.coding import (
    DIRECT_LOOKUP,
    MODEL_TOOL_CALL,
    CodingTrace,
    IcdAssignment,
    _assign,
    check_no_foreign_codes,
    code_diagnoses,
    icd_tool,
)
from inference.icd.lookup import Candidate
from inference.icd.table import open_table
from inference.llm.engine import Engine
from inference.llm.tool_calls import parse_tool_calls, run_tool_call
from inference.progress import RunContext

SAMPLE_DIAGNOSES = ["慢性心力衰竭急性加重", "高血压心脏病", "肾功能不全"]


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "get_icd_code", "arguments": {"disease_name": "心梗"}}\n</tool_call>',
        '```json\n{"name": "get_icd_code", "arguments": {"disease_name": "心梗"}}\n```',
        '好的，我来查询：{"name": "get_icd_code", "arguments": {"disease_name": "心梗"}}',
        '{"function": {"name": "get_icd_code", "arguments": "{\\"disease_name\\": \\"心梗\\"}"}}',
    ],
)
def test_qwen_fenced_bare_and_openai_style_calls_parse(text: str) -> None:
    calls = parse_tool_calls(text)
    assert len(calls) == 1
    assert calls[0].error is None
    assert (calls[0].name, calls[0].arguments) == ("get_icd_code", {"disease_name": "心梗"})


def test_several_tagged_calls_parse_in_order() -> None:
    text = "".join(f'<tool_call>{{"name": "get_icd_code", "arguments": {{"disease_name": "{d}"}}}}</tool_call>'
                   for d in SAMPLE_DIAGNOSES)
    assert [c.arguments["disease_name"] for c in parse_tool_calls(text)] == SAMPLE_DIAGNOSES


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('<tool_call>{"name": "get_icd_code", "arguments": {"disease_name": "心梗"</tool_call>', "not valid JSON"),
        ('<tool_call>{"name": "delete_all", "arguments": {}}</tool_call>', "unknown function"),
        ('<tool_call>{"name": "get_icd_code", "arguments": {}}</tool_call>', "missing argument"),
        ('<tool_call>{"name": "get_icd_code", "arguments": {"disease_name": 42}}</tool_call>', "non-empty string"),
        ('<tool_call>{"name": "get_icd_code", "arguments": {"disease": "心梗"}}</tool_call>', "missing argument"),
        ('<tool_call>["get_icd_code"]</tool_call>', "JSON object"),
    ],
)
def test_malformed_unknown_and_bad_calls_become_error_messages(icd_data: Path, text: str, error: str) -> None:
    tool = icd_tool(open_table("who-zh"))
    calls = parse_tool_calls(text)
    assert calls
    result, message = run_tool_call(calls[0], {tool.name: tool})
    assert result is None
    assert error in message


def test_a_code_the_model_invents_is_rejected_and_never_shown(icd_data: Path) -> None:
    table = open_table("who-zh")
    trace = CodingTrace()
    looked_up = {"心力衰竭": [c.as_dict() for c in [Candidate("I50", "心力衰竭", 1.0, "exact_name")]]}
    assignments = _assign(["心力衰竭"], {"心力衰竭": "I50.999"}, looked_up, table, trace)
    assert "I50.999" in trace.rejected_codes
    assert assignments[0].code in table and assignments[0].code != "I50.999"
    assert assignments[0].provenance == DIRECT_LOOKUP
    assert "不在编码表中" in assignments[0].note


def test_a_code_from_another_diagnosis_lookup_is_rejected(icd_data: Path) -> None:
    table = open_table("who-zh")
    trace = CodingTrace()
    looked_up = {"高血压心脏病": [Candidate("I11", "高血压心脏病", 1.0, "exact_name").as_dict()]}
    assignments = _assign(["高血压心脏病"], {"高血压心脏病": "N19"}, looked_up, table, trace)
    assert trace.rejected_codes == ["N19"]
    # The lookup's I11, taken to its leaf: no heart failure among the record's diagnoses.
    assert (assignments[0].refined_from, assignments[0].code) == ("I11", "I11.9")


def test_output_guard_refuses_any_code_outside_the_table(icd_data: Path) -> None:
    table = open_table("who-zh")
    bad = IcdAssignment("心梗", "I21.999", "编造", 1.0, MODEL_TOOL_CALL, [], table.info.as_dict())
    with pytest.raises(GenerationError):
        check_no_foreign_codes([bad], table)


def test_the_demo_model_codes_the_sample_diagnoses_through_function_calls(icd_data: Path, any_engine: Engine) -> None:
    table = open_table("who-zh")
    streamed: list[str] = []
    assignments, trace = code_diagnoses(any_engine, SAMPLE_DIAGNOSES, table, RunContext(on_token=streamed.append))
    assert [a.diagnosis for a in assignments] == SAMPLE_DIAGNOSES
    for assignment in assignments:
        assert assignment.code in table
        assert all(c.code in table for c in assignment.candidates)
        assert assignment.table["name"] == "who-zh" and assignment.table["sha256"] and assignment.table["ranking"]
    assert "<tool_call>" in "".join(streamed)
    assert trace.calls and all(call["name"] == "get_icd_code" for call in trace.calls)
    assert any(a.provenance == MODEL_TOOL_CALL for a in assignments)
    assert assignments[0].code.startswith("I50")
    assert assignments[1].code.startswith("I11")
    json.dumps([a.as_dict() for a in assignments], ensure_ascii=False)
