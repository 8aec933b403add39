"""The server backend: the same engine seam as ``Engine``, answered by an OpenAI-compatible server.

For a department that runs one model on one GPU server (llama.cpp's ``llama-server``, ``python -m
llama_cpp.server``, vLLM) and lets every ward PC use it. Only the generation moves: prompts are rendered here
with the Qwen chat template (tools in its native ``<tools>`` block, thinking off), sent to ``/v1/completions``
with the same GBNF grammar the embedded engine uses, and streamed back; validation, the ICD lookup against the
local table and the history stay on the ward PC.

What the server can do is read, not assumed: the context of one slot (llama-server's ``/props``; vLLM's
``max_model_len`` in ``/v1/models``), so records are cut into parts that fit a slot and a prompt that does not
fit is refused here with the embedded engine's message, before the server sees it. A server that ignores the
grammar (llama-cpp-python drops what it cannot convert; a vLLM without guided decoding) is caught when the
backend opens: a probe grammar admits exactly one unlikely string, and any other answer refuses the server.
Cancel shuts the socket down at once. Connect errors are retried (three tries); nothing else is, since a
request that reached the server may have run. HTTPS verifies against the system's CAs or a configured bundle
(a hospital's own CA).
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from inference import limits
from inference.errors import GenerationCancelled, GenerationError, ModelError
from inference.llm.chat_template import ChatTemplate, strip_thinking
from inference.llm.decoder import PromptCallback, TokenCallback
from inference.llm.demo_model import DEMO_FILE_NAME
from inference.llm.engine import EngineInfo, GenerationResult, require_room
from inference.llm.server_facts import Json, server_facts
from inference.llm.settings import EngineSettings
from inference.paths import resources_dir

API_KEY_ENV = "MEDBRIEF_API_KEY"
CONNECT_TRIES = 3
CONNECT_TIMEOUT_S = 10.0
PROBE_TEXT = "MEDBRIEF-GRAMMAR-PROBE-7Q"
COUNT_CACHE_SIZE = 4096
DEMO_PARAMS = 494_000_000  # the demo model's size: parts as small as the embedded engine gives it


@dataclass(frozen=True)
class ServerGrammar:
    """A grammar the server compiles: only its text travels."""

    gbnf: str


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str, allow_http: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of a usable server URL; plain HTTP only to this machine unless allowed."""
    invalid = ModelError(f"模型服务器地址无效：{url[:200]} / server URL must be http(s)://host[:port]")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number from 0 to 65535
    except ValueError:
        raise invalid from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise invalid
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ModelError(f"明文 HTTP 只允许连接本机；请使用 HTTPS，或在设置中明确允许明文 HTTP / plain HTTP to "
                         f"{parts.hostname} needs server_allow_http")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def constraint_fields(kind: str, gbnf: str | None) -> dict[str, Any]:
    """The request fields that carry the grammar, and no repetition penalty (as the embedded engine: llama.cpp's
    servers default to 1.1, which bends values copied from the record), in each server's own names."""
    vllm = kind != "grammar"
    fields: dict[str, Any] = {"repetition_penalty" if vllm else "repeat_penalty": 1.0}
    if gbnf is not None:
        fields.update({"structured_outputs": {"grammar": gbnf}} if kind == "structured_outputs" else {kind: gbnf})
    return fields


def tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification against the system's CAs, or only against ``ca_bundle`` (a PEM file, e.g. the hospital's
    own CA) when one is set."""
    if ca_bundle is None:
        return ssl.create_default_context()
    try:
        if ca_bundle.stat().st_size > limits.CA_BUNDLE_BYTES:
            raise ValueError("too large")
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ModelError(f"CA 证书文件无法读取（须为 PEM，上限 {limits.CA_BUNDLE_BYTES // limits.MIB} MB）：{ca_bundle} / "
                         f"the CA bundle cannot be used ({type(exc).__name__})") from exc


def api_key(url: str) -> str | None:
    """From the environment, else the OS keyring (service "medbrief", the server URL as user name); never
    from the config file, the history or a log."""
    key = os.environ.get(API_KEY_ENV)
    if key:
        return key
    try:
        import keyring  # optional: Windows Credential Manager, macOS Keychain, Secret Service
    except ImportError:
        return None
    try:
        return keyring.get_password("medbrief", url)
    except Exception:  # noqa: BLE001 - a locked or missing keyring is "no key", not a crash
        return None


class ServerEngine:
    """The engine seam over HTTP. Thread-safe: every call opens its own connection (batch workers share it)."""

    def __init__(self, settings: EngineSettings) -> None:
        if not settings.server_url:
            raise ModelError("服务器模式需要模型服务器地址 / backend 'server' needs --server-url")
        self.settings = settings
        self.url = settings.server_url.rstrip("/")
        self._scheme, self._host, self._port = check_server_url(self.url, settings.server_allow_http)
        self._tls = tls_context(settings.server_ca_bundle) if self._scheme == "https" else None
        self._key = api_key(self.url)
        self._counts: dict[str, int] = {}
        self._count_route: str | None = None
        started = time.perf_counter()
        models = self._get_json("/v1/models", opening=True)
        try:
            served = [str(entry["id"]) for entry in models["data"]]
        except (KeyError, TypeError) as exc:
            raise ModelError(f"模型服务器的 /v1/models 回答无法解析 / malformed /v1/models answer from {self.url}") from exc
        if not served:
            raise ModelError(f"模型服务器上没有模型 / the server at {self.url} serves no model")
        wanted = settings.server_model
        matching = [name for name in served if wanted in (name, Path(name).name)] if wanted else served
        if not matching:
            raise ModelError(f"模型服务器上的模型是 {'、'.join(served)}，不是设置的 {wanted} / the server serves "
                             f"another model than configured")
        self.model_id = matching[0]
        self.facts = server_facts(models, self.model_id, self._props())
        self.template = ChatTemplate(_template_text(settings.server_template))
        demo = Path(self.model_id).name == DEMO_FILE_NAME
        self.info = EngineInfo(
            model_path=self.model_id, model_name=Path(self.model_id).name, architecture="",
            quantization="server", file_size=0, is_demo=demo, n_ctx=self.facts.slot_context or settings.n_ctx,
            n_ctx_train=None,
            backend="server", gpu_layers_offloaded=0, total_layers=0, flash_attn=settings.flash_attn,
            load_s=0.0, draft_tokens=0, n_params=DEMO_PARAMS if demo else self.facts.params or 0,
            warning="" if self._scheme == "https" or is_loopback(self._host) else
            "明文 HTTP 连接模型服务器（未加密）/ plain HTTP to the model server",
            server=f"{self.url} {self.model_id}",
            fingerprint=hashlib.sha256(json.dumps(models, sort_keys=True).encode()).hexdigest()[:16],
        )
        self._probe_constraint()
        self.info = dataclasses.replace(self.info, load_s=time.perf_counter() - started)

    # -- the engine seam -------------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """One request per distinct text: a record is counted again and again while it is cut into parts."""
        if text not in self._counts:
            if len(self._counts) >= COUNT_CACHE_SIZE:  # a batch of thousands of records must not grow it forever
                self._counts.clear()
            self._counts[text] = self._count(text)
        return self._counts[text]

    def compile_grammar(self, gbnf: str) -> ServerGrammar:
        return ServerGrammar(gbnf)

    def chat(self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
             grammar: ServerGrammar | None = None, max_tokens: int | None = None, fixed_messages: int = 0,
             on_token: TokenCallback | None = None, on_prompt: PromptCallback | None = None,
             cancel: threading.Event | None = None) -> GenerationResult:
        del fixed_messages  # the server keeps its own prompt cache
        prompt = self.template.render(messages, tools=tools)
        return self.generate(prompt, grammar=grammar, max_tokens=max_tokens, on_token=on_token,
                             on_prompt=on_prompt, cancel=cancel)

    def generate(self, prompt: str, *, grammar: ServerGrammar | None = None, max_tokens: int | None = None,
                 on_token: TokenCallback | None = None, on_prompt: PromptCallback | None = None,
                 cancel: threading.Event | None = None) -> GenerationResult:
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("已停止 / generation stopped")
        s = self.settings
        body: dict[str, Any] = {
            "model": self.model_id, "prompt": prompt, "max_tokens": max_tokens or s.max_tokens, "stream": True,
            "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k, "min_p": s.min_p, "seed": s.seed,
        }
        body.update(constraint_fields(self.settings.server_constraint, grammar.gbnf if grammar is not None else None))
        prompt_tokens = self.count_tokens(prompt)
        require_room(prompt_tokens, body["max_tokens"], self.info.n_ctx)  # the server's slot, or the setting
        if on_prompt is not None:
            on_prompt(prompt_tokens, prompt_tokens)
        started = time.perf_counter()
        first_at: float | None = None
        pieces: list[str] = []
        finish = ""
        limit = body["max_tokens"]
        for chunk in self._stream("/v1/completions", body, cancel):
            try:
                choice = chunk["choices"][0]  # type: ignore[index]
                text = choice.get("text") or ""  # type: ignore[union-attr]
            except (KeyError, IndexError, TypeError, AttributeError) as exc:
                raise GenerationError(f"模型服务器返回的数据无法解析 / malformed stream chunk from {self.url}") from exc
            if not isinstance(text, str):
                raise GenerationError(f"模型服务器返回的数据无法解析（文字不是字符串）/ malformed stream chunk from {self.url}")
            if len(pieces) > limit + 16:  # a server streams about one piece per token: it ignores max_tokens
                raise GenerationError(f"模型服务器返回的内容超过请求的上限 {limit} 个 token / the server sent more than "
                                      f"max_tokens: {self.url}")
            if text:
                first_at = first_at or time.perf_counter()
                pieces.append(text)
                if on_token is not None:
                    on_token(text)
            finish = choice.get("finish_reason") or finish
        if not finish:
            raise GenerationError(f"模型服务器连接中断，回答不完整 / the server's answer ended early: {self.url}")
        total = time.perf_counter() - started
        text = "".join(pieces)
        return GenerationResult(text=strip_thinking(text), prompt_tokens=prompt_tokens,
                                completion_tokens=len(pieces), ttft_s=(first_at or time.perf_counter()) - started,
                                total_s=total, finish_reason="length" if finish == "length" else "stop",
                                prompt_tokens_evaluated=prompt_tokens)

    def close(self) -> None:
        """Nothing held between calls."""

    # -- HTTP ------------------------------------------------------------------------------------------

    def _probe_constraint(self) -> None:
        """A grammar that admits one unlikely string: a server that answers anything else ignores grammars."""
        result = self.generate("Say hello.", grammar=ServerGrammar(f'root ::= "{PROBE_TEXT}"'), max_tokens=24)
        if result.text.strip() != PROBE_TEXT:
            raise ModelError(f"模型服务器忽略了输出约束（语法），不能使用 / the server ignores the output grammar "
                             f"({self.settings.server_constraint}); answered {result.text[:40]!r}")

    def _props(self) -> Json:
        """llama-server's ``/props``; other servers have none (404), which is no fault."""
        try:
            return self._get_json("/props")
        except GenerationError:
            return {}

    def _count(self, text: str) -> int:
        routes = [self._count_route] if self._count_route else ["/extras/tokenize/count", "/tokenize"]
        for route in routes:
            body = {"input": text, "model": self.model_id} if route.startswith("/extras") else \
                {"content": text, "prompt": text, "model": self.model_id, "add_special": False}
            try:
                answer = self._post_json(route, body)
            except GenerationError:
                continue
            count = answer.get("count") if isinstance(answer, dict) else None
            if count is None and isinstance(answer, dict) and isinstance(answer.get("tokens"), list):
                count = len(answer["tokens"])
            if isinstance(count, int):
                self._count_route = route
                return count
        raise GenerationError(f"模型服务器不提供分词接口 / the server offers no tokenize route: {self.url}")

    def _connection(self, opening: bool = False) -> http.client.HTTPConnection:
        error: Exception | None = None
        for attempt in range(CONNECT_TRIES):
            if self._scheme == "https":
                connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=CONNECT_TIMEOUT_S, context=self._tls)
            else:
                connection = http.client.HTTPConnection(self._host, self._port, timeout=CONNECT_TIMEOUT_S)
            try:
                connection.connect()
            except ssl.SSLError as exc:
                raise ModelError(f"模型服务器的证书无法验证（医院自己的 CA 请在设置中指定 CA 证书）/ TLS verification "
                                 f"failed for {self.url}: {exc.reason or exc}; set server_ca_bundle") from exc
            except (ConnectionError, TimeoutError, socket.timeout) as exc:
                error = exc
                time.sleep(0.5 * 2**attempt)
                continue
            except OSError as exc:  # a name that does not resolve: retrying will not help
                error = exc
                break
            connection.sock.settimeout(self.settings.server_timeout_s)
            return connection
        kind = ModelError if opening else GenerationError
        raise kind(f"无法连接模型服务器 {self.url}（{type(error).__name__}）/ the model server is unreachable")

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _request(self, method: str, path: str, body: dict[str, object] | None = None,
                 opening: bool = False) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        connection = self._connection(opening)
        try:
            connection.request(method, path, body=json.dumps(body, ensure_ascii=False).encode() if body is not None
                               else None, headers=self._headers())
            response = connection.getresponse()
        except (socket.timeout, TimeoutError) as exc:
            connection.close()
            raise GenerationError(f"模型服务器 {self.settings.server_timeout_s:g} 秒无响应 / the server did not "
                                  f"answer in time: {self.url}") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise GenerationError(f"模型服务器连接中断 / connection to the server lost: {self.url}: "
                                  f"{type(exc).__name__}") from exc
        if response.status != 200:
            detail = response.read(300).decode("utf-8", errors="replace").strip().replace("\n", " ")
            connection.close()
            if response.status in (401, 403):
                raise ModelError(f"模型服务器拒绝访问（{response.status}），请检查 API 密钥（{API_KEY_ENV} 或系统钥匙串）/ "
                                 f"the server refused the API key")
            raise GenerationError(f"模型服务器返回错误 {response.status} / server error: {detail[:200]}")
        return connection, response

    def _get_json(self, path: str, opening: bool = False) -> Json:
        connection, response = self._request("GET", path, opening=opening)
        return self._read_json(connection, response, ModelError if opening else GenerationError)

    def _post_json(self, path: str, body: dict[str, object]) -> Json:
        connection, response = self._request("POST", path, body)
        return self._read_json(connection, response, GenerationError)

    def _read_json(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse,
                   kind: type[Exception]) -> Json:
        try:
            return json.loads(response.read(limits.SERVER_ANSWER_BYTES))
        except (ValueError, OSError, http.client.HTTPException) as exc:
            raise kind(f"模型服务器返回的数据无法解析 / malformed answer from {self.url}") from exc
        except RecursionError:
            raise kind(f"模型服务器返回的数据嵌套过深 / an answer nested too deeply from {self.url}") from None
        finally:
            connection.close()

    def _stream(self, path: str, body: dict[str, object], cancel: threading.Event | None) -> Iterator[Json]:
        """Server-sent events, one JSON object per ``data:`` line, until ``[DONE]``."""
        connection, response = self._request("POST", path, body)
        finished = threading.Event()
        cancelled = threading.Event()

        def watch() -> None:  # a blocked read cannot check the event: shut the socket under it
            while not finished.is_set():
                if cancel.wait(0.05):
                    cancelled.set()
                    try:
                        connection.sock.shutdown(socket.SHUT_RDWR)
                    except (OSError, AttributeError):
                        pass
                    return

        watcher = threading.Thread(target=watch, name="medbrief-server-cancel", daemon=True) if cancel else None
        if watcher is not None:
            watcher.start()
        deadline = time.monotonic() + limits.SERVER_CALL_S
        received = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise GenerationError(f"模型服务器的回答超过 {limits.SERVER_CALL_S:g} 秒仍未结束 / the server's answer "
                                          f"did not end in time: {self.url}")
                try:
                    line = response.readline(limits.SERVER_LINE_BYTES)
                except (socket.timeout, TimeoutError) as exc:
                    raise GenerationError(f"模型服务器 {self.settings.server_timeout_s:g} 秒无响应 / the server "
                                          f"stopped answering: {self.url}") from exc
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if cancelled.is_set():
                        raise GenerationCancelled("已停止 / generation stopped") from exc
                    raise GenerationError(f"模型服务器连接中断 / connection to the server lost: {self.url}") from exc
                if cancelled.is_set():
                    raise GenerationCancelled("已停止 / generation stopped")
                if not line:
                    return  # the caller tells an ended answer from a cut one by its finish reason
                received += len(line)
                if received > limits.SERVER_STREAM_BYTES:
                    raise GenerationError(f"模型服务器返回的数据过多 / the server's answer exceeds "
                                          f"{limits.SERVER_STREAM_BYTES // limits.MIB} MB: {self.url}")
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    return
                try:
                    yield json.loads(data)
                except (ValueError, RecursionError) as exc:
                    raise GenerationError(f"模型服务器返回的数据无法解析 / malformed stream from {self.url}") from exc
        finally:
            finished.set()
            connection.close()


def _template_text(name: str) -> str:
    """A bundled template by name, or a .jinja file (checked as a chat template by ``ChatTemplate``)."""
    try:
        bundled = resources_dir() / "chat_templates" / f"{name}.jinja"
        path = bundled if bundled.is_file() else Path(name).expanduser()
        if path.suffix != ".jinja" or path.stat().st_size > limits.CHAT_TEMPLATE_BYTES:
            raise ModelError(f"对话模板须为 .jinja 文件（上限 {limits.CHAT_TEMPLATE_BYTES // 1024} KB）/ a chat template "
                             f"is a .jinja file: {name}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"找不到对话模板 {name}（内置：qwen3、qwen2.5，或 .jinja 文件路径）/ chat template not "
                         f"found") from exc
