"""What a model server states about itself beyond its model list — the context one request may use, its slots,
its build, the model's size — read defensively from llama-server's ``/props`` and the ``/v1/models`` of
llama-server and vLLM: a value of the wrong type or out of range is ignored, never trusted."""

from __future__ import annotations

from dataclasses import dataclass

Json = dict[str, "Json"] | list["Json"] | str | int | float | bool | None


@dataclass(frozen=True)
class ServerFacts:
    """What the server says about itself beyond its model list; None where it does not say."""

    slot_context: int | None = None  # tokens one request may use: llama-server's per slot, vLLM's max_model_len
    slots: int | None = None  # llama-server's --parallel
    build: str | None = None  # llama-server's build, e.g. "b6950-1a2b3c4"
    params: int | None = None  # the model's parameters (llama-server's /v1/models): how much record a part holds

    @property
    def engine(self) -> str:
        return f"llama.cpp llama-server {self.build}" if self.build else "OpenAI 兼容服务器 / OpenAI-compatible server"


def server_facts(models: Json, model_id: str, props: Json) -> ServerFacts:
    """Read the context per request, the slots and the build from ``/props`` and ``/v1/models``; a value of
    the wrong type or out of range is ignored, never trusted."""

    def count(value: object, bound: int = 1 << 31) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < bound else None

    props = props if isinstance(props, dict) else {}
    entries = models.get("data") if isinstance(models, dict) else None
    entry = next((m for m in entries if isinstance(m, dict) and m.get("id") == model_id), {}) \
        if isinstance(entries, list) else {}
    defaults = props.get("default_generation_settings")
    context = count(defaults.get("n_ctx")) if isinstance(defaults, dict) else None
    meta = entry.get("meta")
    build = props.get("build_info")
    return ServerFacts(slot_context=context or count(entry.get("max_model_len")),  # llama-server, else vLLM
                       slots=count(props.get("total_slots")),
                       build=build[:80] if isinstance(build, str) and build else None,
                       params=count(meta.get("n_params"), 10**13) if isinstance(meta, dict) else None)
