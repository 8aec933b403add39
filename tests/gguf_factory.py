"""Write small, real GGUF files (header and tensor table) for the loader's refusal tests."""

from __future__ import annotations

import struct
from pathlib import Path


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, metadata: dict[str, str | int | float], tensor_bytes: int = 64) -> Path:
    """One F32 tensor of ``tensor_bytes`` bytes; string, uint32 and float32 metadata values."""
    body = b""
    for key, value in metadata.items():
        body += _string(key)
        if isinstance(value, str):
            body += struct.pack("<I", 8) + _string(value)
        elif isinstance(value, float):
            body += struct.pack("<I", 6) + struct.pack("<f", value)
        else:
            body += struct.pack("<I", 4) + struct.pack("<I", value)
    tensor = _string("token_embd.weight") + struct.pack("<I", 1) + struct.pack("<Q", tensor_bytes // 4)
    tensor += struct.pack("<I", 0) + struct.pack("<Q", 0)
    header = b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", 1) + struct.pack("<Q", len(metadata)) + body + tensor
    padding = b"\0" * (-len(header) % 32)
    path.write_bytes(header + padding + b"\0" * tensor_bytes)
    return path


def write_lora(path: Path, base: Path, *, rank: int = 4, weight: float = 0.05, alpha: float = 4.0,
               architecture: str | None = None, targets: tuple[str, ...] = ("attn_q", "attn_v", "ffn_down"),
               shrink: int = 0, seed: int = 7) -> Path:
    """A real GGUF LoRA adapter for ``base``, written with the ``gguf`` package (as llama.cpp's
    convert_lora_to_gguf.py writes one): random A and B of ``weight`` scale on every layer's ``targets``.
    ``weight=0`` makes an adapter that changes nothing; ``shrink`` > 0 makes the shapes fit no model."""
    import gguf
    import numpy as np

    from inference.llm.gguf_header import read_gguf_header

    info = read_gguf_header(base)
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), architecture or info.architecture)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name, shape in info.tensor_shapes.items():
        if not any(f".{target}.weight" in name for target in targets) or not name.startswith("blk."):
            continue
        n_in, n_out = shape
        a = (rng.standard_normal((rank, n_in - shrink)) * weight).astype(np.float32)  # numpy: ggml dims reversed
        b = (rng.standard_normal((n_out, rank)) * weight).astype(np.float32)
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
