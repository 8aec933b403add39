"""Read a GGUF header without loading the model, and refuse files llama.cpp would choke on.

llama.cpp reports a bad file as a bare "failed to load model"; reading the header first lets us
say *why*: not a GGUF, truncated, an architecture this build cannot load, a context too large.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from inference.errors import ModelError
from inference.paths import resources_dir

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
# Arrays longer than this (tokenizer vocabularies) are skipped, not kept in memory.
_MAX_KEPT_ARRAY = 64

# llama_ftype (general.file_type) -> quantization name.
FILE_TYPES: dict[int, str] = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
    25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M",
    32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}

# ggml tensor type -> (block size in elements, bytes per block), for the size check.
_TENSOR_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2),
}


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    file_size: int
    version: int
    architecture: str
    name: str
    context_length: int | None
    quantization: str
    chat_template: str | None
    block_count: int | None
    tensor_count: int
    metadata: dict[str, GgufValue]
    tensor_bytes: dict[str, int] = field(default_factory=dict)  # name → bytes of data (0: unknown type)
    n_vocab: int | None = None  # rows of the token embedding
    tensor_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # name → ggml dims (ne0 first)


# A header value as read: a number, a string, or an array of them (long arrays are skipped: None).
GgufValue = int | float | bool | str | list["GgufValue"] | None


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle = handle
        self._path = path

    def take(self, size: int) -> bytes:
        data = self._handle.read(size)
        if len(data) != size:
            raise ModelError(f"模型文件不完整 / GGUF file is truncated (header ends early): {self._path}")
        return data

    def scalar(self, fmt: str) -> int | float | bool:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > 1 << 28:
            raise ModelError(f"模型文件已损坏 / GGUF header is corrupt (string of {length} bytes): {self._path}")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, value_type: int) -> GgufValue:
        if value_type in _SCALARS:
            return self.scalar(_SCALARS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type == _ARRAY:
            item_type = self.scalar("<I")
            count = self.scalar("<Q")
            if count > 1 << 32:
                raise ModelError(f"模型文件已损坏 / GGUF header is corrupt (array of {count} items): {self._path}")
            if item_type in _SCALARS and count > _MAX_KEPT_ARRAY:
                self.take(struct.calcsize(_SCALARS[item_type]) * count)
                return None
            items = [self.value(item_type) for _ in range(count)]
            return items if count <= _MAX_KEPT_ARRAY else None
        raise ModelError(f"模型文件已损坏 / GGUF header is corrupt (unknown value type {value_type}): {self._path}")


def read_gguf_header(path: str | Path) -> GgufInfo:
    """Parse metadata and tensor table; raise ModelError for a missing, foreign or truncated file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"找不到模型文件 / model file not found: {path}")
    if not path.is_file():
        raise ModelError(f"模型路径不是文件 / model path is not a file: {path}")
    file_size = path.stat().st_size
    with path.open("rb") as handle:
        reader = _Reader(handle, path)
        if handle.read(4) != GGUF_MAGIC:
            raise ModelError(f"不是 GGUF 模型文件 / not a GGUF model file: {path}")
        version = reader.scalar("<I")
        if version not in (2, 3):
            raise ModelError(f"不支持的 GGUF 版本 {version} / unsupported GGUF version: {path}")
        tensor_count = reader.scalar("<Q")
        kv_count = reader.scalar("<Q")
        if kv_count > 1 << 20 or tensor_count > 1 << 24:
            raise ModelError(f"模型文件已损坏 / GGUF header is corrupt: {path}")
        metadata: dict[str, GgufValue] = {}
        for _ in range(kv_count):
            key = reader.string()
            metadata[key] = reader.value(reader.scalar("<I"))
        data_end = 0
        tensor_bytes: dict[str, int] = {}
        tensor_shapes: dict[str, tuple[int, ...]] = {}
        n_vocab = None
        for _ in range(tensor_count):
            name = reader.string()
            n_dims = reader.scalar("<I")
            dims = [reader.scalar("<Q") for _ in range(n_dims)]
            tensor_type = reader.scalar("<I")
            offset = reader.scalar("<Q")
            tensor_bytes[name] = _tensor_bytes(tensor_type, dims)
            tensor_shapes[name] = tuple(dims)
            if name == "token_embd.weight" and len(dims) == 2:
                n_vocab = dims[1]
            data_end = max(data_end, offset + tensor_bytes[name])
        alignment = int(metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        data_start = -(-handle.tell() // alignment) * alignment
    if data_start + data_end > file_size:
        raise ModelError(
            f"模型文件不完整（可能下载中断）/ GGUF file is truncated: {file_size} bytes, "
            f"tensors need {data_start + data_end}: {path}"
        )
    architecture = str(metadata.get("general.architecture", ""))
    file_type = metadata.get("general.file_type")
    context_length = metadata.get(f"{architecture}.context_length")
    block_count = metadata.get(f"{architecture}.block_count")
    return GgufInfo(
        path=path,
        file_size=file_size,
        version=version,
        architecture=architecture,
        name=str(metadata.get("general.name", path.stem)),
        context_length=int(context_length) if context_length is not None else None,
        quantization=FILE_TYPES.get(file_type, f"type{file_type}") if file_type is not None else "unknown",
        chat_template=metadata.get("tokenizer.chat_template"),
        block_count=int(block_count) if block_count is not None else None,
        tensor_count=tensor_count,
        metadata=metadata,
        tensor_bytes=tensor_bytes,
        n_vocab=n_vocab,
        tensor_shapes=tensor_shapes,
    )


def _tensor_bytes(tensor_type: int, dims: list[int]) -> int:
    elements = 1
    for dim in dims:
        elements *= dim
    block, block_bytes = _TENSOR_BLOCKS.get(tensor_type, (1, 0))  # unknown types: offset check only
    return elements // block * block_bytes


@lru_cache(maxsize=1)
def _architecture_list() -> dict[str, str]:
    """Architecture → "" (writes text) or why MedBrief cannot use it (encoder-only, encoder-decoder)."""
    lines = (resources_dir() / "llama_architectures.txt").read_text(encoding="utf-8").splitlines()
    words = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    return {entry[0]: " ".join(entry[1:]) for entry in words}


def supported_architectures() -> frozenset[str]:
    return frozenset(name for name, limit in _architecture_list().items() if not limit)


def check_loadable(info: GgufInfo, n_ctx: int) -> None:
    """Refuse, before llama.cpp tries, what this build cannot run with these settings."""
    if not info.architecture:
        raise ModelError(f"模型文件缺少架构信息 / GGUF has no general.architecture: {info.path}")
    limit = _architecture_list().get(info.architecture, "")
    if limit or f"{info.architecture}.pooling_type" in info.metadata:
        raise ModelError(
            f"该模型（{info.architecture}，{limit or 'embedding'}）是向量/编码模型，不能生成文字，请选择对话模型 / "
            f"{info.architecture} is an {limit or 'embedding'} model that cannot write text: {info.path}"
        )
    if info.architecture not in supported_architectures():
        raise ModelError(
            f"当前 llama.cpp 不支持该模型架构 '{info.architecture}' / architecture not supported by this "
            f"llama.cpp build: {info.path}"
        )
    broken = [key for key, value in info.metadata.items() if isinstance(value, float) and not math.isfinite(value)]
    if broken:
        raise ModelError(f"模型文件参数无效（{broken[0]} = {info.metadata[broken[0]]}），文件已损坏 / the GGUF "
                         f"header holds a non-finite number ({broken[0]}): {info.path}")
    if info.context_length is not None and n_ctx > info.context_length:
        raise ModelError(
            f"上下文长度 n_ctx={n_ctx} 超过模型支持的 {info.context_length} / n_ctx larger than the model's "
            f"context length; lower it in settings"
        )


def model_fingerprint(path: str | Path, sample_bytes: int = 16 * 1024 * 1024) -> str:
    """A quick identity for a multi-GB model: sha256 over its size and first 16 MiB (hex prefix)."""
    path = Path(path)
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(sample_bytes))
    return digest.hexdigest()[:16]
