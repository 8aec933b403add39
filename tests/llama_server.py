"""A real ``python -m llama_cpp.server`` on 127.0.0.1 for the server backend's tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

SERVER_CTX = 8192


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_llama_server(model: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Requests queue instead of cutting the one in flight (``--interrupt_requests False``), as the README
    tells a department to run it."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
                                "--port", str(port), "--n_ctx", str(SERVER_CTX), "--interrupt_requests", "False"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None:
                raise RuntimeError("llama_cpp.server exited (is the server extra installed?)") from None
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("llama_cpp.server did not start")


def server_settings(url: str, **extra: object):  # type: ignore[no-untyped-def]
    from inference.llm.settings import EngineSettings

    return EngineSettings(backend="server", server_url=url, server_template="qwen2.5", n_ctx=SERVER_CTX, **extra)
