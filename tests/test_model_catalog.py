"""The models folder as settings and ``medbrief model list`` show it: what each GGUF is, and whether it fits
this machine's GPU at the chosen context. Real GGUF headers; the GPU is a ``GpuDevice`` of a stated size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.errors import ModelError
from inference.llm.gpu_memory import GIB, GpuDevice
from inference.llm.model_catalog import folder_model, resolve_model_path, scan
from inference.llm.settings import EngineSettings
from tests.gguf_factory import write_gguf

# A Qwen3-14B-like header (no weights): 40 layers, 8 KV heads of 128: 5 GiB of f16 KV cache at 32K context.
QWEN3_14B_HEADER = {
    "general.architecture": "qwen3", "general.name": "Qwen3-14B", "general.file_type": 15,
    "qwen3.block_count": 40, "qwen3.context_length": 40960, "qwen3.embedding_length": 5120,
    "qwen3.attention.head_count": 40, "qwen3.attention.head_count_kv": 8, "qwen3.attention.key_length": 128,
}


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("MEDBRIEF_MODELS_DIR", str(folder))
    return folder


def _model(folder: Path, name: str = "Qwen3-14B-Q4_K_M.gguf") -> Path:
    return write_gguf(folder / name, QWEN3_14B_HEADER)


def test_the_list_says_what_each_file_is_models_first(models) -> None:
    _model(models)
    write_gguf(models / "hospital-style.gguf", {"general.architecture": "qwen3", "general.type": "adapter",
                                                "adapter.type": "lora"})
    write_gguf(models / "bge-m3.gguf", {"general.architecture": "bert", "bert.pooling_type": 2})
    (models / "download.gguf").write_bytes(b"<html>proxy error</html>")
    (models / "notes.txt").write_text("not listed", encoding="utf-8")
    entries = scan(EngineSettings(), [])
    assert [(e.path.name, e.kind) for e in entries] == [
        ("Qwen3-14B-Q4_K_M.gguf", "model"), ("hospital-style.gguf", "adapter"),
        ("bge-m3.gguf", "unusable"), ("download.gguf", "unusable")]
    model, adapter, embedding, broken = entries
    assert (model.architecture, model.quantization, model.name) == ("qwen3", "Q4_K_M", "Qwen3-14B")
    assert model.fits is None and model.verdict.startswith("CPU 运行")  # no GPU to compare with
    assert "LoRA" in adapter.verdict and "不能生成文字" in embedding.verdict and "不是 GGUF" in broken.verdict


def test_whether_it_fits_follows_the_gpu_and_the_chosen_context(models) -> None:
    _model(models)
    rtx_4090 = GpuDevice("NVIDIA GeForce RTX 4090", free=int(23.5 * GIB), total=24 * GIB)
    small_card = GpuDevice("NVIDIA T4", free=4 * GIB, total=16 * GIB)
    at_32k = EngineSettings(n_ctx=32768)
    assert scan(at_32k, [rtx_4090])[0].fits is True
    entry = scan(at_32k, [small_card])[0]
    assert entry.fits is False and entry.verdict.startswith("显存不足") and "T4" in entry.verdict
    assert scan(EngineSettings(n_ctx=8192), [small_card])[0].fits is True  # a smaller context fits that card
    assert scan(EngineSettings(n_ctx=32768, n_gpu_layers=0), [small_card])[0].verdict.startswith("CPU 运行")
    assert json.loads(json.dumps(entry.as_dict()))["memory"]["device"]["name"] == "NVIDIA T4"


def test_with_nothing_configured_the_one_model_in_the_folder_is_used(models, monkeypatch) -> None:
    assert folder_model() is None and resolve_model_path(None) is None  # empty: the demo model
    write_gguf(models / "style.gguf", {"general.architecture": "qwen3", "general.type": "adapter"})
    only = _model(models)
    assert folder_model() == only and resolve_model_path(None) == only
    monkeypatch.setenv("MEDBRIEF_MODEL", str(models / "chosen.gguf"))
    assert resolve_model_path(None) == models / "chosen.gguf"  # an explicit choice wins
    monkeypatch.delenv("MEDBRIEF_MODEL")
    _model(models, "Qwen3-8B-Q4_K_M.gguf")
    with pytest.raises(ModelError, match="2 个模型.*请在设置中选择"):
        resolve_model_path(None)


def test_the_cli_lists_the_folder(models, capsys) -> None:
    from inference.cli import main

    _model(models)
    assert main(["model", "list", "--json", "--ctx", "8192"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["folder"] == str(models) and listed["files"][0]["memory"]["n_ctx"] == 8192
    assert main(["model", "list"]) == 0
    assert "Qwen3-14B-Q4_K_M.gguf" in capsys.readouterr().out


def test_settings_list_the_folder_and_a_click_chooses(qtbot, models) -> None:
    from desktop.settings_dialog import SettingsDialog

    model = _model(models)
    adapter = write_gguf(models / "style.gguf", {"general.architecture": "qwen3", "general.type": "adapter",
                                                 "adapter.type": "lora"})
    dialog = SettingsDialog(EngineSettings())
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.catalog.rowCount() == 2, timeout=10_000)
    assert dialog.catalog.item(0, 0).text() == model.name and dialog.catalog.item(0, 2).text() == "qwen3"
    dialog.catalog.selectRow(0)
    dialog.catalog.selectRow(1)
    assert dialog.editors["model_path"].text() == str(model) and dialog.editors["lora_path"].text() == str(adapter)
    settings = dialog.settings()
    assert settings.model_path == model and settings.lora_path == adapter
    dialog.field("n_ctx").setValue(4096)  # the fit is estimated again for the new context
    qtbot.waitUntil(lambda: "4096" in json.dumps(dialog.entries[0].as_dict()), timeout=10_000)


def test_settings_choose_the_server_backend_and_refuse_plain_http_to_another_machine(qtbot, models) -> None:
    from desktop.settings_dialog import SettingsDialog

    dialog = SettingsDialog(EngineSettings())
    qtbot.addWidget(dialog)
    dialog.field("backend").setCurrentIndex(dialog.field("backend").findData("server"))
    dialog.field("server_url").setText("http://10.1.2.3:8000")
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and dialog.problem.text().startswith("服务器设置不可用：明文 HTTP")
    dialog.field("server_url").setText("https://llm.hospital.local:8000")
    dialog.field("server_model").setText("Qwen3-14B-Q4_K_M.gguf")
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted
    chosen = dialog.settings()
    assert (chosen.backend, chosen.server_url, chosen.server_model) == (
        "server", "https://llm.hospital.local:8000", "Qwen3-14B-Q4_K_M.gguf")
