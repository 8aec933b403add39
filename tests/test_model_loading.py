"""The engine refuses bad model files with a clear reason before llama.cpp touches them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from inference.errors import ModelError
from inference.llm.engine import Engine
from inference.llm.gguf_header import check_loadable, read_gguf_header
from inference.llm.settings import EngineSettings
from tests.conftest import REPO_ROOT, SAMPLE_RECORD
from tests.gguf_factory import write_gguf


def test_demo_model_header_describes_qwen2_q4_k_m(demo_model_path: Path) -> None:
    info = read_gguf_header(demo_model_path)
    assert info.architecture == "qwen2"
    assert info.quantization == "Q4_K_M"
    assert info.context_length == 32768
    assert "<tool_call>" in (info.chat_template or "")
    assert info.file_size == 491_400_064


def test_missing_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Engine(EngineSettings(model_path=tmp_path / "nope.gguf"))


def test_non_gguf_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("this is not a model", encoding="utf-8")
    with pytest.raises(ModelError, match="not a GGUF"):
        Engine(EngineSettings(model_path=fake))


def test_gguf_cut_inside_header_is_reported_truncated(demo_model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with demo_model_path.open("rb") as source:
        cut.write_bytes(source.read(4096))
    with pytest.raises(ModelError, match="truncated"):
        read_gguf_header(cut)


def test_gguf_missing_tensor_data_is_reported_truncated(demo_model_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    with demo_model_path.open("rb") as source, cut.open("wb") as target:
        shutil.copyfileobj(source, target, length=1 << 20)
        target.truncate(20 * 1024 * 1024)  # an interrupted copy: header intact, weights missing
    with pytest.raises(ModelError, match="truncated"):
        Engine(EngineSettings(model_path=cut))


def test_architecture_unknown_to_this_llama_cpp_is_refused(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "odd.gguf", {"general.architecture": "notamodel", "notamodel.context_length": 4096})
    with pytest.raises(ModelError, match="architecture not supported"):
        Engine(EngineSettings(model_path=path, n_ctx=2048))


def test_n_ctx_beyond_the_model_context_is_refused(demo_model_path: Path) -> None:
    info = read_gguf_header(demo_model_path)
    with pytest.raises(ModelError, match="n_ctx larger"):
        check_loadable(info, n_ctx=65536)


def test_engine_reports_where_it_runs(demo_engine: Engine) -> None:
    info = demo_engine.info
    assert info.backend in {"CPU", "GPU"}
    assert info.total_layers == 25  # 24 blocks + output
    assert info.is_demo and "DEMO" in info.label
    assert info.n_ctx == 32768
    if info.backend == "CPU":
        assert info.gpu_layers_offloaded == 0


@pytest.mark.parametrize(
    ("make_model", "expected"),
    [
        (lambda d: d / "missing.gguf", "not found"),
        (lambda d: (d / "x.gguf").write_bytes(b"PK\x03\x04 zip, not gguf") and d / "x.gguf", "not a GGUF"),
    ],
)
def test_cli_reports_bad_model_in_one_line_with_exit_code_4(tmp_path: Path, make_model, expected: str) -> None:
    model = make_model(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "inference", "summarize", str(SAMPLE_RECORD), "--model", str(model), "--quiet"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
    )
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert expected in proc.stderr
