"""Parse and run the model's function calls.

Qwen models emit ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``; small models also emit the
same object in a ```json fence or bare. Anything malformed becomes a ``ToolCall`` with an ``error``,
which is sent back to the model as a tool message — never an exception.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference.llm.json_scan import scan_json

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]
    raw: str
    error: str | None = None


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    required: list[str] = field(default_factory=list)

    def schema(self) -> dict[str, Any]:
        """The chat template's tools format (OpenAI style, which Qwen's template renders in <tools>)."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description,
            "parameters": {"type": "object", "properties": self.parameters, "required": self.required}}}


def _json_objects(text: str) -> list[str]:
    """Top-level {...} spans of ``text`` (brace matching that respects strings)."""
    spans, depth, start = [], 0, -1
    for index, char in scan_json(text).marks:
        if char == "{":
            if depth == 0:
                start = index
            depth += 1
        elif char == "}" and depth:
            depth -= 1
            if depth == 0:
                spans.append(text[start:index + 1])
    return spans


def _to_call(raw: str) -> ToolCall:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return ToolCall("", {}, raw, f"tool call is not valid JSON: {exc.msg}")
    if not isinstance(data, dict):
        return ToolCall("", {}, raw, "tool call must be a JSON object")
    if isinstance(data.get("function"), dict):  # OpenAI-style {"function": {"name", "arguments"}}
        data = data["function"]
    name = data.get("name")
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return ToolCall(str(name or ""), {}, raw, "arguments must be a JSON object")
    if not isinstance(name, str) or not name:
        return ToolCall("", {}, raw, 'tool call has no "name"')
    if not isinstance(arguments, dict):
        return ToolCall(name, {}, raw, "arguments must be a JSON object")
    return ToolCall(name, arguments, raw)


def parse_tool_calls(text: str) -> list[ToolCall]:
    tagged = _TAGGED.findall(text)
    if tagged:
        return [_to_call(body) for body in tagged]
    bodies = _FENCED.findall(text) or [text]
    calls = []
    for body in bodies:
        for raw in _json_objects(body):
            call = _to_call(raw)
            if call.error is None or '"name"' in raw:
                calls.append(call)
    return calls


def run_tool_call(call: ToolCall, tools: dict[str, Tool]) -> tuple[Any, str | None]:
    """(result, error). The error text is what the model reads in its tool message."""
    if call.error:
        return None, call.error
    tool = tools.get(call.name)
    if tool is None:
        return None, f"unknown function {call.name!r}; available: {', '.join(sorted(tools))}"
    missing = [name for name in tool.required if name not in call.arguments]
    if missing:
        return None, f"missing argument(s): {', '.join(missing)}"
    unexpected = [name for name in call.arguments if name not in tool.parameters]
    if unexpected:
        return None, f"unknown argument(s): {', '.join(unexpected)}"
    for name, value in call.arguments.items():
        if tool.parameters[name].get("type") == "string" and (not isinstance(value, str) or not value.strip()):
            return None, f"argument {name!r} must be a non-empty string"
    return tool.function(**call.arguments), None
