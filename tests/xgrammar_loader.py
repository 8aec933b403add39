"""xgrammar, the grammar engine behind vLLM's structured outputs, loaded without torch.

xgrammar's grammar parser, compiler and matcher are C++ and do not touch torch; its Python wrapper imports torch
and transformers at import time only for token bitmasks and Hugging Face tokenizers, which these tests do not
use (the vocabulary comes from the GGUF through llama.cpp). PyPI's torch for Linux brings about 3 GB of CUDA
libraries, so ``setup.sh test`` installs xgrammar with ``--no-deps`` and the two names are held by inert modules
while it imports, then removed again so that nothing else in the session mistakes them for the real ones.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

_PLACEHOLDERS = ("torch", "torch.utils", "torch.utils.cpp_extension", "transformers")


class _Inert:
    """Whatever xgrammar's import-time code asks of torch or transformers: a type, a constant, a call."""

    def __init__(self, *_args: object, **_kwargs: object) -> None:
        pass

    def __call__(self, *_args: object, **_kwargs: object) -> "_Inert":
        return _Inert()

    def __getattr__(self, name: str) -> "_Inert":
        return _inert_attribute(name)

    def __class_getitem__(cls, _item: object) -> type["_Inert"]:
        return cls


def _inert_attribute(name: str) -> Any:
    if name.startswith("__"):  # introspection (inspect.unwrap, pickling) must see a plain object
        raise AttributeError(name)
    return _Inert if name[:1].isupper() else _Inert()


def load_xgrammar() -> Any:
    if "xgrammar" in sys.modules:
        return sys.modules["xgrammar"]
    importlib.import_module("tvm_ffi")  # first: it binds to torch only when torch is really installed
    installed = {top: importlib.util.find_spec(top) is not None for top in ("torch", "transformers")}
    added = []
    for name in _PLACEHOLDERS:
        if not installed[name.split(".")[0]] and name not in sys.modules:
            module = types.ModuleType(name)
            module.__getattr__ = _inert_attribute  # type: ignore[method-assign]
            module.__path__ = []  # type: ignore[attr-defined]
            sys.modules[name] = module
            added.append(name)
    try:
        return importlib.import_module("xgrammar")
    finally:
        for name in added:
            sys.modules.pop(name, None)
