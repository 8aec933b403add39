"""What the server backend reads from the server instead of assuming it (llama-server's slot context, slots and
build; vLLM's max_model_len), ``medbrief server check``, and HTTPS with a hospital's own CA, against real servers
on 127.0.0.1."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference.errors import GenerationError, ModelError
from tests.conftest import SAMPLE_RECORD
from tests.fake_server import JsonHandler, serving
from tests.llama_server import SLOT_CTX, SLOTS, server_settings, start_server

Json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=20)


# -- llama-server --parallel 4, as a department runs it ------------------------------------------------------

def test_the_slot_context_comes_from_the_server_and_records_are_cut_to_fit_it(llama_cpp_server_url) -> None:
    from inference.llm.server import ServerEngine
    from inference.summary.summarizer import build_messages, part_tokens

    engine = ServerEngine(server_settings(llama_cpp_server_url, n_ctx=32768))  # the setting is not the server
    assert engine.info.n_ctx == SLOT_CTX and engine.facts.slots == SLOTS
    assert engine.facts.engine.startswith("llama.cpp llama-server b") and engine.facts.params > 400_000_000
    overhead = engine.count_tokens(engine.template.render(build_messages("")))
    assert part_tokens(engine) == SLOT_CTX - engine.settings.max_tokens - overhead  # all the slot leaves
    too_long = "胸闷气促。" * SLOT_CTX
    with pytest.raises(GenerationError, match="病历过长.*超过上下文 4096"):  # refused here, not by the server
        engine.chat([{"role": "user", "content": too_long}], max_tokens=16)
    assert engine.chat([{"role": "user", "content": "你好"}], max_tokens=4).completion_tokens >= 1


def test_llama_server_too_slow_for_the_timeout_is_a_clear_error_and_still_answers_after(llama_cpp_server_url) -> None:
    """A prompt of a thousand new tokens takes llama-server seconds on two cores before its first token: with a
    one-second timeout that is "无响应", and the next request is answered."""
    import secrets

    from inference.llm.server import ServerEngine

    engine = ServerEngine(server_settings(llama_cpp_server_url))  # opened (the probe) with the usual patience
    engine.settings = engine.settings.model_copy(update={"server_timeout_s": 1.0})
    fresh = "，".join(f"病程第{i}天记录{secrets.token_hex(4)}" for i in range(120))  # nothing the slot has cached
    with pytest.raises(GenerationError, match="1 秒无响应"):
        engine.chat([{"role": "user", "content": fresh}], max_tokens=8)
    engine.settings = engine.settings.model_copy(update={"server_timeout_s": 120.0})
    assert engine.chat([{"role": "user", "content": "你好"}], max_tokens=4).completion_tokens >= 1


def test_a_slot_too_small_for_the_prompt_is_one_line_naming_the_slot(demo_model_path, capsys) -> None:
    from inference.cli import main

    process, url = start_server("llama-server", demo_model_path, slot_ctx=2048)
    try:
        code = main(["summarize", str(SAMPLE_RECORD), "--backend", "server", "--server-url", url,
                     "--server-template", "qwen2.5", "--quiet"])
        check = main(["server", "check", url, "--server-template", "qwen2.5"])
    finally:
        process.kill()
        process.wait()
    err = capsys.readouterr()
    assert code == 5 and check == 5
    assert "服务器每个槽位的上下文 2048 太小" in err.err and "Traceback" not in err.err
    assert "每次请求的上下文：2048 token（服务器所报）" in err.out  # what was read, then why


def test_server_check_reports_what_it_needs_and_runs_the_sample(llama_cpp_server_url, capsys) -> None:
    from inference.cli import main

    assert main(["server", "check", llama_cpp_server_url, "--server-template", "qwen2.5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"].endswith("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    assert (report["slots"], report["context_per_request"], report["context_from_server"]) == (SLOTS, SLOT_CTX, True)
    assert report["constraint"] == "grammar" and report["tls"] is False and report["demo"] is True
    assert 0 < report["part_tokens"] < SLOT_CTX
    sample = report["sample"]
    assert sample["diagnoses"] == 3 and sample["diagnoses_coded"] == 3 and sample["seconds"] > 0


# -- what the server says, read defensively ----------------------------------------------------------------

def test_server_facts_from_llama_server_vllm_and_a_server_that_says_nothing() -> None:
    from inference.llm.server_facts import server_facts

    llama = server_facts({"data": [{"id": "m", "meta": {"n_params": 14_768_307_200}}]}, "m",
                         {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 4, "build_info": "b7000-abc"})
    assert (llama.slot_context, llama.slots, llama.build, llama.params) == (4096, 4, "b7000-abc", 14_768_307_200)
    vllm = server_facts({"data": [{"id": "other", "max_model_len": 1}, {"id": "Qwen/Qwen3-14B",
                                                                       "max_model_len": 40960}]}, "Qwen/Qwen3-14B", {})
    assert (vllm.slot_context, vllm.slots, vllm.engine) == (40960, None, "OpenAI 兼容服务器 / OpenAI-compatible server")
    assert server_facts({"data": [{"id": "m"}]}, "m", {}).slot_context is None
    for nonsense in (True, -5, 0, 2**40, "4096", 4096.0):
        assert server_facts({}, "m", {"default_generation_settings": {"n_ctx": nonsense},
                                      "total_slots": nonsense}).slot_context is None


@settings(max_examples=300, deadline=None)
@given(models=Json, props=Json)
def test_server_facts_never_fail_on_any_json(models, props) -> None:
    from inference.llm.server_facts import server_facts

    facts = server_facts(models, "m", props)
    assert facts.slot_context is None or 0 < facts.slot_context < 2**31
    assert facts.build is None or len(facts.build) <= 80


# -- HTTPS with the hospital's own CA ----------------------------------------------------------------------

def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA made here and a server certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "某医院信息科 CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm.hospital.local")]))
              .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


class _Honest(JsonHandler):
    """An OpenAI-compatible server that honours the probe grammar and answers "{}" otherwise."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._json({"object": "list", "data": [{"id": "qwen3-14b-q4_k_m.gguf", "max_model_len": 32768}]})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.startswith("/extras/tokenize"):
            return self._json({"count": len(body["input"])})
        grammar = str(body.get("grammar", ""))
        text = grammar.split('"')[1] if "PROBE" in grammar else "{}"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(f"data: {json.dumps({'choices': [{'text': text, 'finish_reason': 'stop'}]})}\n\n"
                         "data: [DONE]\n\n".encode())


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = _certificates(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(_Honest, tls=context) as url:
        yield url.replace("http://", "https://"), ca


def test_https_to_a_server_of_the_hospitals_ca_is_refused_without_the_ca_and_accepted_with_it(tls_server) -> None:
    from inference.llm.server import ServerEngine

    url, ca = tls_server
    with pytest.raises(ModelError, match="证书无法验证.*server_ca_bundle"):
        ServerEngine(server_settings(url))
    engine = ServerEngine(server_settings(url, server_ca_bundle=ca))
    assert engine.info.warning == "" and engine.info.n_ctx == 32768  # vLLM's max_model_len, read
    assert engine.chat([{"role": "user", "content": "你好"}]).text == "{}"


def test_server_check_over_https_with_the_ca_bundle(tls_server, capsys) -> None:
    from inference.cli import main

    url, ca = tls_server
    assert main(["server", "check", url, "--no-sample"]) == 4
    assert "证书无法验证" in capsys.readouterr().err
    assert main(["server", "check", url, "--no-sample", "--server-ca-bundle", str(ca)]) == 0
    out = capsys.readouterr().out
    assert "（HTTPS）" in out and "32768 token（服务器所报）" in out and "演示模型" not in out


@pytest.mark.parametrize("content", [b"", b"-----BEGIN CERTIFICATE-----\nnot base64\n", b"\x00" * 64])
def test_a_ca_bundle_that_is_not_one_is_one_line(tls_server, tmp_path, content) -> None:
    from inference.llm.server import ServerEngine

    url, _ca = tls_server
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    for path in (bad, tmp_path / "missing.pem", tmp_path):
        with pytest.raises(ModelError, match="CA 证书文件无法读取"):
            ServerEngine(server_settings(url, server_ca_bundle=path))


def test_a_ca_bundle_over_the_bound_is_refused_unread(tls_server, tmp_path) -> None:
    from inference import limits
    from inference.llm.server import ServerEngine

    url, _ca = tls_server
    huge = tmp_path / "huge.pem"
    with huge.open("wb") as out:
        out.truncate(limits.CA_BUNDLE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ModelError, match="上限 4 MB"):
        ServerEngine(server_settings(url, server_ca_bundle=huge))


def test_the_settings_dialog_checks_the_server_off_the_gui_thread(qtbot, tls_server) -> None:
    from desktop.settings_dialog import SettingsDialog
    from inference.llm.settings import EngineSettings

    url, ca = tls_server
    dialog = SettingsDialog(EngineSettings(), None)
    qtbot.addWidget(dialog)
    dialog.check_server()
    assert dialog.server_report.text() == "不可用：请先填写服务器地址"
    dialog.editors["server_url"].set_text(url)
    for bundle, expected in ((None, "不可用：模型服务器的证书无法验证"), (ca, "每次请求的上下文：32768 token（服务器所报）")):
        if bundle is not None:
            dialog.editors["server_ca_bundle"].set_text(str(bundle))
        dialog.check_server()
        assert not dialog.check_button.isEnabled()  # the GUI thread went on: the answer comes later
        qtbot.waitUntil(dialog.check_button.isEnabled, timeout=20_000)
        assert expected in dialog.server_report.text()
    assert "病历分段：每段至多" in dialog.server_report.text() and "模型：qwen3-14b-q4_k_m.gguf" in dialog.server_report.text()
