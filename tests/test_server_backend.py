"""The server backend against the real servers a department runs, on 127.0.0.1 with the demo model (llama.cpp's
``llama-server --parallel 4`` and llama-cpp-python's ``llama_cpp.server``), and against small real HTTP servers
on 127.0.0.1 that misbehave in the ways a department's server can."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference.errors import GenerationCancelled, GenerationError, ModelError
from inference.llm.settings import EngineSettings
from tests.conftest import REPO_ROOT, SAMPLE_RECORD
from tests.fake_server import JsonHandler, serving
from tests.llama_server import SERVER_CTX, SERVER_KINDS, free_port, server_settings, start_server


def _settings(url: str, **extra: object) -> EngineSettings:
    return server_settings(url, **extra)


# -- against llama-server and llama_cpp.server with the demo model --------------------------------------------

def test_the_sample_record_through_the_server_is_summarized_coded_and_recorded(real_server, tmp_path) -> None:
    from inference.history.store import HistoryStore

    out = tmp_path / "summary.json"
    from inference.cli import main

    assert main(["summarize", str(SAMPLE_RECORD), "--backend", "server", "--server-url", real_server,
                 "--server-template", "qwen2.5", "--n-ctx", str(SERVER_CTX), "--json", "--out", str(out), "--save",
                 "--quiet"]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["chief_complaint"] and result["present_illness"] and len(result["diagnoses"]) == 3
    codes = [d["icd"]["code"] for d in result["diagnoses"]]
    assert "I11.0" in codes  # the tool-call rounds ran over HTTP, the combination rules here
    assert result["model"]["backend"] == "server" and result["model"]["demo"] is True
    assert result["model"]["server"].startswith(real_server) and result["model"]["file"].endswith(".gguf")
    store = HistoryStore.open()
    try:
        run = store.runs(store.list_records()[0].document_id)[-1]
    finally:
        store.close()
    assert run.backend == "server" and run.model_file == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert len(run.model_hash_prefix) == 16  # the /v1/models answer's hash


def test_a_batch_runs_concurrently_keeps_failures_apart_and_resumes(llama_cpp_server_url, tmp_path, capsys) -> None:
    from inference.cli import main

    folder = tmp_path / "backlog"
    folder.mkdir()
    for age in (61, 72):
        (folder / f"patient{age}.txt").write_text(SAMPLE_RECORD.read_text(encoding="utf-8").replace("68岁", f"{age}岁"),
                                                  encoding="utf-8")
    (folder / "scan.txt").write_bytes(b"\x00\x01\x02 not text")
    args = ["summarize", "--batch", str(folder), "--workers", "2", "--backend", "server", "--server-url",
            llama_cpp_server_url,
            "--server-template", "qwen2.5", "--n-ctx", str(SERVER_CTX), "--no-icd"]
    assert main(args) == 10  # one record failed
    out = folder / "medbrief-summaries"
    assert sorted(p.name for p in out.glob("*.json")) == ["patient61.json", "patient72.json"]
    summary = json.loads((out / "patient72.json").read_text(encoding="utf-8"))
    assert summary["source"]["file"] == "patient72.txt" and summary["chief_complaint"]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(f["file"], f["exit_code"]) for f in failures] == [("scan.txt", "3")]
    assert "3/3" in capsys.readouterr().err  # the progress line
    (out / "patient61.json").unlink()
    before = (out / "patient72.json").stat().st_mtime_ns
    assert main(args) == 10
    assert (out / "patient61.json").exists() and (out / "patient72.json").stat().st_mtime_ns == before  # resumed


def test_cancel_closes_the_stream_at_once(real_server) -> None:
    from inference.llm.server import ServerEngine

    engine = ServerEngine(_settings(real_server))
    cancel = threading.Event()
    tokens: list[str] = []

    def on_token(text: str) -> None:
        tokens.append(text)
        if len(tokens) == 3:
            cancel.set()

    started = time.monotonic()
    with pytest.raises(GenerationCancelled):
        engine.chat([{"role": "user", "content": "写一篇三百字的高血压科普文章。"}], max_tokens=400,
                    on_token=on_token, cancel=cancel)
    assert len(tokens) < 10 and time.monotonic() - started < 15
    again = engine.chat([{"role": "user", "content": "你好"}], max_tokens=4)  # the server still answers
    assert again.completion_tokens >= 1


def test_a_server_serving_another_model_than_configured_is_refused(real_server) -> None:
    from inference.llm.server import ServerEngine

    with pytest.raises(ModelError, match="不是设置的 Qwen3-14B-Q4_K_M.gguf"):
        ServerEngine(_settings(real_server, server_model="Qwen3-14B-Q4_K_M.gguf"))
    assert ServerEngine(_settings(real_server, server_model="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")).info.is_demo


def test_a_real_server_told_the_wrong_grammar_field_is_refused_by_the_probe(real_server) -> None:
    """Each server ignores a field it does not know: sent as vLLM's, the grammar does not constrain llama.cpp's
    servers, and the probe catches it when the backend opens."""
    from inference.llm.server import ServerEngine

    with pytest.raises(ModelError, match="忽略了输出约束"):
        ServerEngine(_settings(real_server, server_constraint="structured_outputs"))


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_server_killed_mid_stream_is_a_clear_error_and_nothing_is_saved(kind, demo_model_path, capsys) -> None:
    from inference.cli import main
    from inference.history.store import HistoryStore

    process, url = start_server(kind, demo_model_path)
    killer = threading.Timer(12.0, process.kill)  # the model is writing the summary by then
    killer.start()
    try:
        code = main(["summarize", str(SAMPLE_RECORD), "--backend", "server", "--server-url", url,
                     "--server-template", "qwen2.5", "--n-ctx", str(SERVER_CTX), "--save", "--quiet"])
    finally:
        killer.cancel()
        process.kill()
        process.wait()
    err = capsys.readouterr().err
    assert code == 5 and ("连接中断" in err or "无法连接" in err), err
    assert "Traceback" not in err
    store = HistoryStore.open()
    try:
        assert store.list_records() == []
    finally:
        store.close()


def test_in_server_mode_the_app_connects_to_the_server_and_nothing_else(llama_cpp_server_url, tmp_path) -> None:
    port = int(llama_cpp_server_url.rsplit(":", 1)[1])
    connects = _audited(tmp_path, ["summarize", str(SAMPLE_RECORD), "--backend", "server", "--server-url",
                                   llama_cpp_server_url, "--server-template", "qwen2.5", "--n-ctx", str(SERVER_CTX),
                                   "--no-icd", "--quiet"])
    assert connects and set(connects) == {("127.0.0.1", port)}


def test_in_embedded_mode_the_app_opens_no_socket_at_all(demo_model_path, tmp_path) -> None:
    assert _audited(tmp_path, ["summarize", str(SAMPLE_RECORD), "--no-icd", "--quiet"], sockets=True) == []


def _audited(tmp_path: Path, args: list[str], sockets: bool = False) -> list[object]:
    """Run the CLI in a fresh interpreter with an audit hook: every socket created (``sockets``) or every
    address connected to."""
    script = textwrap.dedent(f"""
        import json, sys
        seen = []
        def hook(event, args):
            if event == "socket.connect":
                seen.append(list(args[1]) if isinstance(args[1], tuple) else str(args[1]))
            elif event == "socket.__new__" and {sockets!r}:
                seen.append("socket")
        sys.addaudithook(hook)
        from inference.cli import main
        code = main({args!r})
        print("AUDIT " + json.dumps(seen))
        sys.exit(code)
    """)
    env = {"MEDBRIEF_DATA_DIR": str(tmp_path / "data"), "MEDBRIEF_CONFIG_DIR": str(tmp_path / "config"),
           "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("AUDIT "))
    return [tuple(item) if isinstance(item, list) else item for item in json.loads(line[6:])]


# -- small real servers that misbehave ------------------------------------------------------------------

class _Misbehaving(JsonHandler):
    mode = "ok"
    served = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    honours = "grammar"  # the request field this server constrains with, as llama.cpp's or vLLM's does
    bodies: list[dict[str, object]]

    def _grammar(self, body: dict) -> str:
        if self.honours == "structured_outputs":
            return (body.get("structured_outputs") or {}).get("grammar", "")
        return body.get(self.honours, "")

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._json({"object": "list", "data": [{"id": self.served}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        grammar = self._grammar(body)
        if self.path.startswith("/extras/tokenize"):
            return self._json({"count": len(body["input"])})
        if self.mode == "slow":
            time.sleep(3)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        if self.mode == "ignores_grammar":
            chunks = [{"choices": [{"text": "Hello!", "finish_reason": "stop"}]}]
        elif self.mode == "malformed" and "PROBE" not in grammar:
            self.wfile.write(b"data: {not json\n\n")
            return
        else:
            probe = grammar.split('"')[1] if "PROBE" in grammar else "{}"
            chunks = [{"choices": [{"text": probe, "finish_reason": "stop"}]}]
        for chunk in chunks:
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def misbehaving() -> Iterator[tuple[str, type[_Misbehaving]]]:
    handler = type("Handler", (_Misbehaving,), {"bodies": []})
    with serving(handler) as url:
        yield url, handler


def test_a_server_that_ignores_the_grammar_is_refused_when_opened(misbehaving) -> None:
    from inference.llm.server import ServerEngine

    url, handler = misbehaving
    handler.mode = "ignores_grammar"
    with pytest.raises(ModelError, match="忽略了输出约束"):
        ServerEngine(_settings(url))


def test_malformed_data_and_a_slow_server_are_clear_errors(misbehaving) -> None:
    from inference.llm.server import ServerEngine

    url, handler = misbehaving
    engine = ServerEngine(_settings(url, server_timeout_s=1.0))
    handler.mode = "malformed"
    with pytest.raises(GenerationError, match="无法解析"):
        engine.chat([{"role": "user", "content": "你好"}])
    handler.mode = "slow"
    started = time.monotonic()
    with pytest.raises(GenerationError, match="无响应"):
        engine.chat([{"role": "user", "content": "你好"}])
    assert time.monotonic() - started < 3  # the timeout, not the server's pace


def test_a_server_that_is_down_is_retried_then_named(tmp_path) -> None:
    from inference.llm.server import ServerEngine

    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ModelError, match=f"无法连接模型服务器 {url}"):
        ServerEngine(_settings(url))
    assert 3.0 < time.monotonic() - started < 10  # three tries with backoff, then one clear line


def test_plain_http_goes_to_this_machine_only_unless_allowed(misbehaving) -> None:
    from inference.llm.server import check_server_url

    assert check_server_url("http://127.0.0.1:8000", allow_http=False)[1] == "127.0.0.1"
    assert check_server_url("http://[::1]:8000", allow_http=False)[1] == "::1"
    with pytest.raises(ModelError, match="明文 HTTP 只允许连接本机"):
        check_server_url("http://10.0.0.5:8000", allow_http=False)
    assert check_server_url("http://10.0.0.5:8000", allow_http=True)[2] == 8000
    assert check_server_url("https://llm.hospital.local", allow_http=False) == ("https", "llm.hospital.local", 443)
    with pytest.raises(ModelError, match="地址无效"):
        check_server_url("ftp://x", allow_http=True)
    with pytest.raises(ValueError, match="server_url"):
        EngineSettings(backend="server")


def test_the_api_key_comes_from_the_environment_and_is_never_kept(misbehaving, monkeypatch) -> None:
    from inference.llm.server import ServerEngine

    url, handler = misbehaving
    seen: list[str | None] = []
    original = handler.do_GET

    def recording(self: _Misbehaving) -> None:
        seen.append(self.headers.get("Authorization"))
        original(self)

    handler.do_GET = recording  # type: ignore[method-assign]
    monkeypatch.setenv("MEDBRIEF_API_KEY", "sk-ward-7")
    engine = ServerEngine(_settings(url))
    assert len(seen) == 2 and set(seen) == {"Bearer sk-ward-7"}  # /v1/models and /props
    assert "sk-ward-7" not in json.dumps(engine.settings.model_dump(mode="json"))
    assert "sk-ward-7" not in json.dumps(engine.info.as_dict())


def test_the_window_runs_on_the_server_and_says_so(qtbot, llama_cpp_server_url) -> None:
    from desktop.main_window import MainWindow
    from inference.llm.backends import open_engine
    from inference.llm.settings import AppConfig
    from inference.pipeline import run_pipeline

    window = MainWindow(open_engine, run_pipeline, AppConfig(engine=_settings(llama_cpp_server_url)), None,
                        alert=lambda *_: None, confirm=lambda *_: True)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: window.engine_info is not None, timeout=60_000)
        assert window.status.placement_label.text().startswith(f"运行于：服务器 {llama_cpp_server_url}")
        assert window.status.model_label.text().startswith("模型：qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        assert window.banners.demo.isVisibleTo(window)  # the demo model on a server is still the demo model
    finally:
        window.host.stop()


@pytest.mark.parametrize(("kind", "penalty"), [("grammar", "repeat_penalty"), ("structured_outputs", "repetition_penalty"),
                                               ("guided_grammar", "repetition_penalty")])
def test_the_grammar_travels_in_each_servers_own_field(misbehaving, kind, penalty) -> None:
    from inference.llm.server import ServerEngine

    url, handler = misbehaving
    handler.honours = kind
    engine = ServerEngine(_settings(url, server_constraint=kind))  # the probe passed: the server saw the grammar
    engine.chat([{"role": "user", "content": "你好"}], grammar=engine.compile_grammar('root ::= "{}"'))
    sent = handler.bodies[-1]
    assert sent[penalty] == 1.0 and sent["prompt"].startswith("<|im_start|>")
    assert (sent["structured_outputs"]["grammar"] if kind == "structured_outputs" else sent[kind]) == 'root ::= "{}"'
    handler.honours = "grammar"  # a vLLM told the wrong field ignores it: refused, never trusted
    if kind != "grammar":
        with pytest.raises(ModelError, match="忽略了输出约束"):
            ServerEngine(_settings(url, server_constraint=kind))
