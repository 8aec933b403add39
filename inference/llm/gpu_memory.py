"""Will this model fit? GPU memory estimated from the GGUF header before llama.cpp loads anything.

The estimate adds the weights that go to the GPU, the KV cache for ``n_ctx`` at the chosen precision and
llama.cpp's compute buffer for one physical batch. It is compared with the free memory nvidia-smi reports
(NVIDIA only: with another GPU, or none visible, nothing is compared). ``medbrief model inspect`` prints it;
the engine refuses, before loading, a model that cannot fit, and the desktop shows that one-line reason.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from inference.llm.gguf_header import GgufInfo

GIB = 2**30


def gib(n_bytes: float) -> str:
    """A size as every message states it: ``14.2 GiB``."""
    return f"{n_bytes / GIB:.1f} GiB"


# Bytes per element of the KV cache: f16, and q8_0's 34-byte blocks of 32.
KV_BYTES = {"f16": 2.0, "q8_0": 34 / 32}
# llama.cpp rounds the context up to a multiple of 256 cells.
KV_PAD = 256
# llama.cpp's CUDA compute buffer with flash attention, measured for the Qwen3-14B shape on an H200
# (bench/results/h200_synthetic_qwen3_14b.json): 306.8 MiB at n_ubatch 512 and 1227.0 MiB at 2048, i.e.
# 4 bytes × (vocabulary + hidden size) per token of the physical batch (the worst-case graph llama.cpp
# reserves keeps the logits of every token), plus this much.
COMPUTE_FIXED = 16 * 2**20
# What the desktop itself and the CUDA context take on a ward PC's card beside llama.cpp.
HEADROOM = GIB // 2


@dataclass(frozen=True)
class GpuDevice:
    name: str
    free: int
    total: int


@dataclass(frozen=True)
class MemoryEstimate:
    model: str
    n_ctx: int
    kv_cache_type: str
    n_ubatch: int
    gpu_layers: int  # layers (of ``total_layers``) placed on the GPU
    total_layers: int
    weights: int  # bytes of weights on the GPU
    kv_cache: int
    compute: int
    device: GpuDevice | None

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute

    @property
    def fits(self) -> bool | None:
        """None when no GPU is visible (nothing to compare with)."""
        if self.device is None:
            return None
        if self.gpu_layers == 0:
            return True  # nothing goes to the GPU
        return self.total + HEADROOM <= self.device.free

    def verdict(self) -> str:
        need = f"需要约 {gib(self.total)} 显存 / needs about {gib(self.total)}"
        if self.device is None:
            return f"{need}；未检测到 GPU，将在 CPU 上运行 / no GPU visible: it will run on the CPU"
        have = f"{self.device.name} 空闲 {gib(self.device.free)}"
        if self.fits:
            return f"{need}，{have}：可以完全放入 GPU / fits on the GPU"
        return f"{need}，{have}：放不下 / does not fit. {self.suggestion()}"

    def suggestion(self) -> str:
        if self.device is None:
            return ""
        room = self.device.free - HEADROOM
        if self.kv_cache_type == "f16":
            q8 = self.weights + int(self.kv_cache * KV_BYTES["q8_0"] / KV_BYTES["f16"]) + self.compute
            if q8 <= room:
                return "建议：KV 缓存改为 q8_0 / use kv_cache_type q8_0 (needs flash attention)"
        per_token = self.kv_cache / max(self.n_ctx, 1)
        ctx = int((room - self.weights - self.compute) / per_token) // KV_PAD * KV_PAD if per_token else 0
        if ctx >= 4096:
            return f"建议：上下文改为 {ctx} 以下 / lower n_ctx to {ctx} or less"
        return "建议：换用更小的量化（如 Q4_K_M）或更大的显卡 / use a smaller quantization or a larger GPU"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "n_ctx": self.n_ctx, "kv_cache_type": self.kv_cache_type, "n_ubatch": self.n_ubatch,
            "gpu_layers": self.gpu_layers, "total_layers": self.total_layers,
            "weights_gib": round(self.weights / GIB, 2), "kv_cache_gib": round(self.kv_cache / GIB, 2),
            "compute_gib": round(self.compute / GIB, 2), "total_gib": round(self.total / GIB, 2),
            "device": None if self.device is None else {
                "name": self.device.name, "free_gib": round(self.device.free / GIB, 2),
                "total_gib": round(self.device.total / GIB, 2)},
            "fits": self.fits, "verdict": self.verdict(),
        }


def estimate(
    info: GgufInfo,
    *,
    n_ctx: int,
    kv_cache_type: str = "f16",
    n_ubatch: int = 512,
    n_gpu_layers: int = -1,
    flash_attn: bool = True,
    device: GpuDevice | None = None,
) -> MemoryEstimate:
    arch = info.architecture
    n_layer = info.block_count or 0  # bounded when the header was read: it sizes a list here
    n_embd = info.count(f"{arch}.embedding_length") or 0
    n_head = info.count(f"{arch}.attention.head_count", per_layer=True) or 1  # per-layer arrays: their largest
    n_head_kv = info.count(f"{arch}.attention.head_count_kv", per_layer=True) or n_head
    head_k = info.count(f"{arch}.attention.key_length") or n_embd // n_head
    head_v = info.count(f"{arch}.attention.value_length") or head_k
    n_vocab = info.n_vocab or 32_000
    total_layers = n_layer + 1  # + the output layer, as llama.cpp counts
    on_gpu = total_layers if n_gpu_layers < 0 else min(n_gpu_layers, total_layers)

    layer_bytes = [0] * n_layer
    embedding = info.tensor_bytes.get("token_embd.weight", 0)
    output = info.tensor_bytes.get("output.weight")
    other = 0
    for name, size in info.tensor_bytes.items():
        layer = name.split(".")[1] if name.startswith("blk.") else ""
        if layer.isdecimal():
            if int(layer) < n_layer:
                layer_bytes[int(layer)] += size
        elif name != "token_embd.weight":
            other += size  # output norm and output
    # The input embedding stays in host memory; a model with tied embeddings uses it again as output.
    output_layer = other + (embedding if output is None else 0)
    repeating = min(on_gpu, n_layer)
    cells = -(-n_ctx // KV_PAD) * KV_PAD
    weights = sum(layer_bytes[n_layer - repeating:]) + (output_layer if on_gpu > n_layer else 0)

    kv_cache = int(repeating * cells * n_head_kv * (head_k + head_v) * KV_BYTES.get(kv_cache_type, 2.0))
    compute = (n_ubatch * 4 * (n_vocab + n_embd) + COMPUTE_FIXED) if on_gpu else 0
    if on_gpu and not flash_attn:  # attention scores materialized per head (not measured: flash attention is the default)
        compute += n_ubatch * cells * n_head * 4
    return MemoryEstimate(
        model=info.path.name, n_ctx=n_ctx, kv_cache_type=kv_cache_type, n_ubatch=n_ubatch, gpu_layers=on_gpu,
        total_layers=total_layers, weights=weights, kv_cache=kv_cache, compute=compute, device=device,
    )


def gpu_devices() -> list[GpuDevice]:
    """NVIDIA GPUs with their free memory (nvidia-smi, as the driver reports them); empty when there is none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        run = subprocess.run([smi, "--query-gpu=name,memory.free,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    devices = []
    for line in run.stdout.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            devices.append(GpuDevice(name=parts[0], free=int(parts[1]) * 2**20, total=int(parts[2]) * 2**20))
    return devices
