"""Render chat messages with the model's own Jinja chat template (from the GGUF).

Rendering ourselves, rather than through ``create_chat_completion``, lets us pass
``enable_thinking=False`` to Qwen3's template (an empty ``<think></think>`` block), present tools in the
template's native ``<tools>`` format, and constrain the reply with our own grammar.

A template comes from a file someone else made: it runs in Jinja's immutable sandbox, its text is bounded, its
``range`` and its ``*``/``**`` cannot build gigabytes, and it must render a plain conversation before a model is
loaded. Whatever it holds, the outcome is a rendered prompt or a ``ModelError`` (exit 4).
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inference import limits
from inference.errors import ModelError, described

MAX_RANGE = 10_000  # a template's loop over range(): Qwen's count at most the messages
MAX_PRODUCT = 1_000_000  # characters or items a template may build with * (a prompt is tens of thousands)
_PROBE_TEXT = "MEDBRIEF-PROBE-7f3a"
_PROBE = [{"role": "system", "content": "system"}, {"role": "user", "content": _PROBE_TEXT}]

# Used when a GGUF carries no template: plain ChatML, which Qwen models speak.
CHATML_TEMPLATE = (
    "{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)

_THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _tojson(value: object, indent: int | None = None, **_: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateError(f"range of {len(numbers)} items")
    return numbers


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*`` and ``**`` unable to build huge strings, lists or numbers."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: object, right: object) -> object:
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise TemplateError("exponent too large")
        if operator == "*":
            for value, times in ((left, right), (right, left)):
                if isinstance(value, (str, list, tuple)) and isinstance(times, int) \
                        and len(value) * times > MAX_PRODUCT:
                    raise TemplateError("a product too large")
        return super().call_binop(context, operator, left, right)


class ChatTemplate:
    def __init__(self, template: str | None, bos_token: str = "", eos_token: str = "") -> None:
        source = template or CHATML_TEMPLATE
        if len(source.encode("utf-8", errors="replace")) > limits.CHAT_TEMPLATE_BYTES:
            raise ModelError(f"对话模板过长（上限 {limits.CHAT_TEMPLATE_BYTES // 1024} KB）/ the chat template is too "
                             "long to be one")
        environment = _BoundedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_exception
        environment.globals["range"] = _bounded_range
        try:
            self._template = environment.from_string(source)
        except Exception as exc:  # noqa: BLE001 - Jinja's parser fails in TemplateError and, deep enough, RecursionError
            raise ModelError(f"模型的对话模板无法解析 / the GGUF chat template does not parse: {described(exc)}") from exc
        self._bos_token = bos_token
        self._eos_token = eos_token
        # A template that cannot render a plain conversation, or leaves the doctor's message out of the prompt
        # (a text file given as a template), is refused before any model loads or request is sent.
        if _PROBE_TEXT not in self.render(_PROBE):
            raise ModelError("对话模板没有把消息放进提示词（不是对话模板？）/ the chat template does not place the "
                             "messages in the prompt")

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> str:
        try:
            return self._template.render(
                messages=messages,
                tools=tools,
                add_generation_prompt=True,
                enable_thinking=False,
                bos_token=self._bos_token,
                eos_token=self._eos_token,
            )
        except Exception as exc:  # noqa: BLE001 - a template's own code fails in any type (1/0, "a" + 1)
            raise ModelError(f"对话模板渲染失败 / chat template failed to render: {described(exc)}") from exc


def strip_thinking(text: str) -> str:
    """Remove any ``<think>…</think>`` block a model emits despite thinking being off."""
    return _THINK_BLOCK.sub("", text).lstrip()
