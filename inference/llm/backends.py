"""The engine the settings name: llama.cpp in this process, or a client of a department's OpenAI-compatible
model server. Both are a ``ChatEngine``: everything above runs on either."""

from __future__ import annotations

from inference.llm.engine import ChatEngine, Engine
from inference.llm.server import ServerEngine
from inference.llm.settings import EngineSettings


def open_engine(settings: EngineSettings) -> ChatEngine:
    if settings.backend == "server":
        return ServerEngine(settings)
    return Engine(settings)
