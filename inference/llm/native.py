"""llama-cpp-python, loaded on first use: importing the core (the CLI's help, the tables, the checks, the
history) must not need llama.cpp's native library, only running or inspecting a model does."""

from __future__ import annotations

from types import ModuleType


def llama_cpp() -> ModuleType:
    """The ``llama_cpp`` package (its ``llama_grammar`` and ``_logger`` submodules come loaded with it)."""
    import llama_cpp as module  # start-up time: the native library loads only when a model is used

    return module
