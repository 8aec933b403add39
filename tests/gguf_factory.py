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
