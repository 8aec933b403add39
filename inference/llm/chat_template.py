"""Render chat messages with the model's own Jinja chat template (from the GGUF).

Rendering ourselves, rather than through ``create_chat_completion``, lets us pass
``enable_thinking=False`` to Qwen3's template (an empty ``<think></think>`` block), present tools in the
template's native ``<tools>`` format, and constrain the reply with our own grammar.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inference.errors import ModelError

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


class ChatTemplate:
    def __init__(self, template: str | None, bos_token: str = "", eos_token: str = "") -> None:
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.filters["tojson"] = _tojson
        environment.globals["raise_exception"] = _raise_exception
        try:
            self._template = environment.from_string(template or CHATML_TEMPLATE)
        except TemplateError as exc:
            raise ModelError(f"模型的对话模板无法解析 / the GGUF chat template does not parse: {exc}") from exc
        self._bos_token = bos_token
        self._eos_token = eos_token

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
        except TemplateError as exc:
            raise ModelError(f"对话模板渲染失败 / chat template failed to render: {exc}") from exc


def strip_thinking(text: str) -> str:
    """Remove any ``<think>…</think>`` block a model emits despite thinking being off."""
    return _THINK_BLOCK.sub("", text).lstrip()
