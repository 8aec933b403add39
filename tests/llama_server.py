"""The real servers the server backend is tested against, on 127.0.0.1 with the demo model: llama-cpp-python's
``python -m llama_cpp.server`` and llama.cpp's own ``llama-server`` (built by ``setup.sh test`` from the llama.cpp
source llama-cpp-python 0.3.36 vendors), as a department runs it: ``--parallel 4`` slots."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVER_CTX = 8192
SLOTS = 4
SLOT_CTX = 4096  # llama-server's -c is shared by its slots: 4 × 4096
SERVER_KINDS = ("llama-cpp-python", "llama-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def llama_server_binary() -> Path:
    """$MEDBRIEF_LLAMA_SERVER (setup.sh test sets it), else the one setup.sh built into the user cache."""
    named = os.environ.get("MEDBRIEF_LLAMA_SERVER")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medbrief"
    found = [Path(named)] if named else sorted(cache.glob("llama-server-0.3.36-*/llama-server"))
    if not found or not found[0].is_file():
        pytest.fail("llama.cpp's llama-server is not built here: the README's test command (bash setup.sh test) "
                    "builds it")
    return found[0]


def start_server(kind: str, model: Path, slot_ctx: int = SLOT_CTX) -> tuple[subprocess.Popen[bytes], str]:
    """``kind`` on a free port, ready to answer. llama_cpp.server queues requests instead of cutting the one in
    flight (``--interrupt_requests False``), as the README tells a department to run it; llama-server gets
    ``--parallel 4`` and ``slot_ctx`` tokens per slot."""
    port = free_port()
    if kind == "llama-server":
        command = [str(llama_server_binary()), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
                   "--ctx-size", str(slot_ctx * SLOTS), "--parallel", str(SLOTS), "--no-kv-unified", "--threads", "2", "--no-webui"]
    else:
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                   "--port", str(port), "--n_ctx", str(SERVER_CTX), "--interrupt_requests", "False"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {process.returncode} (is the test extra installed?)")
        if _ready(port):
            return process, f"http://127.0.0.1:{port}"
        time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{kind} did not start")


def _ready(port: int) -> bool:
    """Answers /v1/models with 200 (llama-server answers 503 while it loads the model)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/v1/models")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def server_settings(url: str, **extra: object):  # type: ignore[no-untyped-def]
    from inference.llm.settings import EngineSettings

    return EngineSettings(**{"backend": "server", "server_url": url, "server_template": "qwen2.5", "n_ctx": SERVER_CTX,
                             **extra})
