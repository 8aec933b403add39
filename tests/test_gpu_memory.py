"""GPU memory estimated from the GGUF header, the refusal before loading, and where llama.cpp put the layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import inference.llm.engine as engine_module
from inference.errors import ModelError
from inference.llm.engine import _placed_layers, _placement_warning
from inference.llm.gguf_header import GgufInfo, read_gguf_header
from inference.llm.gpu_memory import GIB, HEADROOM, GpuDevice, estimate
from inference.llm.settings import EngineSettings

REPO = Path(__file__).resolve().parent.parent


def test_kv_cache_follows_the_architecture(demo_model_path: Path) -> None:
    info = read_gguf_header(demo_model_path)  # Qwen2.5-0.5B: 24 layers, 2 KV heads of 64
    f16 = estimate(info, n_ctx=32768, kv_cache_type="f16")
    assert f16.kv_cache == 24 * 32768 * 2 * (64 + 64) * 2
    q8 = estimate(info, n_ctx=32768, kv_cache_type="q8_0")
    assert q8.kv_cache == int(f16.kv_cache * 34 / 64)
    assert estimate(info, n_ctx=1000).kv_cache == estimate(info, n_ctx=1024).kv_cache  # padded to 256 cells
    # Everything but the input embedding, which llama.cpp keeps in host memory, goes to the GPU.
    assert "output.weight" in info.tensor_bytes
    assert f16.weights == sum(info.tensor_bytes.values()) - info.tensor_bytes["token_embd.weight"]
    assert estimate(info, n_ctx=4096, n_gpu_layers=0).total == 0
    assert f16.fits is None and "未检测到 GPU" in f16.verdict()


def test_estimate_matches_what_llama_cpp_allocated_for_qwen3_14b() -> None:
    """Qwen3-14B's shape (40 layers, 8 KV heads of 128, hidden 5120, vocabulary 151,936) against the buffers
    llama.cpp reported on an H200 (bench/results/h200_synthetic_qwen3_14b.json, 32K context, flash attention):
    KV 5120.0 MiB in f16 and 2720.0 in q8_0, compute 306.8 MiB at n_ubatch 512 and 1227.0 at 2048."""
    meta = {"general.architecture": "qwen3", "qwen3.block_count": 40, "qwen3.embedding_length": 5120,
            "qwen3.attention.head_count": 40, "qwen3.attention.head_count_kv": 8, "qwen3.attention.key_length": 128,
            "qwen3.attention.value_length": 128}
    info = GgufInfo(path=Path("Qwen3-14B-Q4_K_M.gguf"), file_size=0, version=3, architecture="qwen3", name="Qwen3-14B",
                    context_length=40960, quantization="Q4_K_M", chat_template=None, block_count=40, tensor_count=0,
                    metadata=meta, tensor_bytes={}, n_vocab=151_936)
    mib = 2**20
    assert estimate(info, n_ctx=32768).kv_cache / mib == 5120.0
    assert estimate(info, n_ctx=32768, kv_cache_type="q8_0").kv_cache / mib == 2720.0
    assert estimate(info, n_ctx=32768, n_ubatch=512).compute / mib == pytest.approx(306.8, rel=0.06)
    assert estimate(info, n_ctx=32768, n_ubatch=2048).compute / mib == pytest.approx(1227.0, rel=0.02)


def test_verdict_says_whether_it_fits_and_what_to_change(demo_model_path: Path) -> None:
    info = read_gguf_header(demo_model_path)
    need = estimate(info, n_ctx=32768).total
    roomy = estimate(info, n_ctx=32768, device=GpuDevice("RTX 4090", free=need + GIB, total=24 * GIB))
    assert roomy.fits and "可以完全放入 GPU" in roomy.verdict()
    tight = estimate(info, n_ctx=32768, device=GpuDevice("RTX 4090", free=need + HEADROOM - 64 * 2**20, total=24 * GIB))
    assert tight.fits is False and "放不下" in tight.verdict() and "q8_0" in tight.verdict()
    tiny = estimate(info, n_ctx=32768, kv_cache_type="q8_0",
                    device=GpuDevice("small", free=tight.weights + tight.compute + HEADROOM + 100 * 2**20, total=GIB))
    assert "n_ctx" in tiny.suggestion()


def test_engine_refuses_a_model_that_cannot_fit_before_loading(demo_model_path: Path) -> None:
    small = [GpuDevice("RTX 4090", free=100 * 2**20, total=24 * GIB)]
    info = read_gguf_header(demo_model_path)
    with pytest.raises(ModelError, match="显存不足"):
        engine_module._check_fits(info, EngineSettings(), small)
    assert engine_module._check_fits(info, EngineSettings(n_gpu_layers=0), small) is None  # CPU on purpose
    assert engine_module._check_fits(info, EngineSettings(), []) is None  # no NVIDIA GPU visible: nothing to compare


def test_placement_comes_from_what_llama_cpp_logged() -> None:
    log = "load_tensors: offloading 40 repeating layers to GPU\nload_tensors: offloaded 41/41 layers to GPU\n"
    assert _placed_layers(log, 41) == (41, 41)
    assert _placed_layers("nothing about layers", 25) == (0, 25)
    assert _placement_warning(-1, 41, 41, gpu_build=True) == ""
    assert "CPU-only" in _placement_warning(-1, 0, 41, gpu_build=False)
    assert "no usable GPU" in _placement_warning(-1, 0, 41, gpu_build=True)
    assert "only 20 of 41" in _placement_warning(-1, 20, 41, gpu_build=True)
    assert _placement_warning(20, 20, 41, gpu_build=True) == ""  # asked for 20, got 20
    assert _placement_warning(0, 0, 41, gpu_build=False) == ""  # CPU on purpose


def test_model_inspect_prints_the_estimate(demo_model_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "inference", "model", "inspect", str(demo_model_path), "--ctx", "8192"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Qwen2.5" in run.stdout and "n_ctx 8192" in run.stdout and "显存估算" in run.stdout
    missing = subprocess.run([sys.executable, "-m", "inference", "model", "inspect", "/nonexistent.gguf"],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert missing.returncode == 4 and "model file not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    tiny = subprocess.run([sys.executable, "-m", "inference", "model", "inspect", str(demo_model_path), "--ctx", "0"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert tiny.returncode == 2 and "invalid engine option n_ctx" in tiny.stderr and "Traceback" not in tiny.stderr
