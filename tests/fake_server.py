"""A small OpenAI-compatible server on 127.0.0.1 that streams whatever a test scripts: hostile streams for the
server backend's fuzz and bound tests. It answers /v1/models, counts tokens, honours the probe grammar (so the
backend opens), and streams the script's bytes for every other completion."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Script = Callable[[], Iterator[bytes | float]]  # bytes are written, a float is a pause in seconds


class JsonHandler(BaseHTTPRequestHandler):
    """Quiet, and answers JSON: what every fake server here shares."""

    def log_message(self, *_args: object) -> None:
        pass

    def _json(self, answer: object) -> None:
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """``handler`` served on 127.0.0.1 in a thread: its URL (``http://`` even with ``tls``, which makes the
    socket TLS)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Handler(JsonHandler):
    script: Script

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._json({"object": "list", "data": [{"id": "scripted.gguf"}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.startswith("/extras/tokenize"):
            return self._json({"count": len(body["input"])})
        grammar = str(body.get("grammar", ""))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            if "PROBE" in grammar:
                probe = grammar.split('"')[1]
                self.wfile.write(f"data: {json.dumps({'choices': [{'text': probe, 'finish_reason': 'stop'}]})}\n\n"
                                 "data: [DONE]\n\n".encode())
                return
            for piece in self.script():
                if isinstance(piece, float):
                    time.sleep(piece)
                else:
                    self.wfile.write(piece)
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass


@contextmanager
def scripted_server() -> Iterator[tuple[str, type[_Handler]]]:
    """The server's URL and its handler class, whose ``script`` the test sets (and may change between calls)."""
    handler = type("Handler", (_Handler,), {"script": staticmethod(lambda: iter([b"data: [DONE]\n\n"]))})
    with serving(handler) as url:
        yield url, handler
