"""A hospital's LoRA adapter: checked against the base model before loading, applied by llama.cpp, recorded
with every run. The adapters are real GGUF files written with the ``gguf`` package for the demo model."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.errors import ModelError
from inference.llm.gguf_header import read_gguf_header
from inference.llm.lora import check_adapter
from inference.llm.settings import EngineSettings
from tests.gguf_factory import write_gguf, write_lora

QUESTION = [{"role": "user", "content": "用一句话介绍高血压。"}]


@pytest.fixture(scope="module")
def adapters(demo_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("lora")
    return {
        "style": write_lora(folder / "style.gguf", demo_model_path),
        "zero": write_lora(folder / "zero.gguf", demo_model_path, weight=0.0),
        "llama": write_lora(folder / "llama.gguf", demo_model_path, architecture="llama"),
        "other_size": write_lora(folder / "other_size.gguf", demo_model_path, shrink=128),
    }


def _answer(model: Path, **settings: object) -> tuple[str, object]:
    from inference.llm.engine import Engine

    engine = Engine(EngineSettings(model_path=model, n_ctx=1024, **settings))
    try:
        return engine.chat(QUESTION, max_tokens=24).text, engine.info
    finally:
        engine.close()


def test_an_adapter_changes_the_output_a_zero_one_or_zero_scale_does_not(demo_model_path, adapters):
    plain, plain_info = _answer(demo_model_path)
    styled, info = _answer(demo_model_path, lora_path=adapters["style"])
    zero, _ = _answer(demo_model_path, lora_path=adapters["zero"])
    off, _ = _answer(demo_model_path, lora_path=adapters["style"], lora_scale=0.0)
    assert styled != plain
    assert zero == plain and off == plain
    assert plain_info.lora == "" and "LoRA" not in plain_info.label
    assert info.lora.startswith("style.gguf ×1 sha256:") and "LoRA style.gguf" in info.label
    assert info.as_dict()["lora"] == info.lora


@pytest.mark.parametrize(("name", "said"), [("llama", "架构"), ("other_size", "不是为当前模型")])
def test_an_adapter_for_another_model_is_refused_before_loading(demo_model_path, adapters, name, said):
    with pytest.raises(ModelError, match=said):
        check_adapter(adapters[name], read_gguf_header(demo_model_path))


def test_not_an_adapter_or_a_truncated_one_is_one_clear_error(demo_model_path, adapters, tmp_path):
    base = read_gguf_header(demo_model_path)
    with pytest.raises(ModelError, match="不是 LoRA 适配器"):
        check_adapter(demo_model_path, base)  # a model, not an adapter
    with pytest.raises(ModelError, match="不是 LoRA 适配器"):
        check_adapter(write_gguf(tmp_path / "plain.gguf", {"general.architecture": "qwen2"}), base)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(adapters["style"].read_bytes()[:100_000])
    with pytest.raises(ModelError, match="LoRA 适配器无法读取.*不完整"):
        check_adapter(cut, base)
    with pytest.raises(ModelError, match="找不到 LoRA 适配器文件"):
        check_adapter(tmp_path / "missing.gguf", base)


def test_the_cli_takes_lora_and_records_it_with_the_run(demo_model_path, adapters, tmp_path, capsys):
    from inference.cli import main
    from inference.history.store import HistoryStore
    from inference.paths import resources_dir

    sample = resources_dir() / "samples" / "sample_record.txt"
    assert main(["summarize", str(sample), "--model", str(demo_model_path), "--lora", str(adapters["llama"]),
                 "--quiet"]) == 4
    assert "架构" in capsys.readouterr().err
    code = main(["summarize", str(sample), "--model", str(demo_model_path), "--lora", str(adapters["zero"]),
                 "--lora-scale", "0.5", "--no-icd", "--quiet", "--save", "--json"])
    assert code in (0, 8), capsys.readouterr().err  # 8: a rejected draft is kept in the history too
    store = HistoryStore.open()
    try:
        runs = store.runs(store.list_records()[0].document_id)
    finally:
        store.close()
    assert runs[-1].lora.startswith("zero.gguf ×0.5 sha256:")


def test_the_status_bar_shows_the_adapter(qtbot, demo_model_path, adapters) -> None:
    from desktop.main_window import MainWindow
    from inference.llm.backends import open_engine
    from inference.llm.settings import AppConfig
    from inference.pipeline import run_pipeline

    config = AppConfig(engine=EngineSettings(model_path=demo_model_path, n_ctx=2048, lora_path=adapters["zero"],
                                             lora_scale=0.8))
    window = MainWindow(open_engine, run_pipeline, config, None, alert=lambda *_: None, confirm=lambda *_: True)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: window.engine_info is not None, timeout=60_000)
        assert window.status.model_label.text().endswith("+ LoRA zero.gguf ×0.8")
    finally:
        window.host.stop()
