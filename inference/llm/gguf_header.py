"""Read a GGUF header without loading the model, and refuse files llama.cpp would choke on.

llama.cpp reports a bad file as a bare "failed to load model"; reading the header first lets us
say *why*: not a GGUF, truncated, an architecture this build cannot load, a context too large. Whatever the
file holds — values of the wrong type, NaN where a count belongs, arrays nested 50,000 deep, counts that would
take gigabytes — the outcome is a ``GgufInfo`` or a ``ModelError`` (exit 4), within the bounds of ``limits``.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from inference import limits
from inference.errors import ModelError
from inference.paths import resources_dir

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# GGUF metadata value types.
_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
# Arrays longer than this (tokenizer vocabularies) are skipped, not kept in memory.
_MAX_KEPT_ARRAY = 64
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_COUNT = 1 << 48  # no count, size or offset in a real header comes near it
_MAX_ALIGNMENT = 1 << 20

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

    def count(self, key: str, limit: int = _MAX_COUNT, per_layer: bool = False) -> int | None:
        """A whole, non-negative number of the header (``per_layer``: or an array of them, its largest), None
        when absent; anything else — text, NaN, infinity, a negative or absurd number — is a corrupt header."""
        return header_count(self.metadata, key, self.path, limit, per_layer)

    def number(self, key: str) -> float | None:
        """A finite number of the header, None when absent; anything else is a corrupt header."""
        value = self.metadata.get(key)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise ModelError(f"模型文件已损坏（{key} 不是有限的数字）/ GGUF header value {key} is not a finite number: "
                         f"{self.path}")

    def text(self, key: str) -> str | None:
        value = self.metadata.get(key)
        if value is None or isinstance(value, str):
            return value
        raise ModelError(f"模型文件已损坏（{key} 不是文字）/ GGUF header value {key} is not text: {self.path}")


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

    def corrupt(self, what: str) -> ModelError:
        return ModelError(f"模型文件已损坏 / GGUF header is corrupt ({what}): {self._path}")

    def count(self, limit: int) -> int:
        value = int(self.scalar("<Q"))
        if value > limit:
            raise self.corrupt(f"a count of {value}, over {limit}")
        return value

    def string(self) -> str:
        return self.take(self.count(limits.GGUF_STRING_BYTES)).decode("utf-8", errors="replace")

    def value(self, value_type: int, depth: int = 0) -> GgufValue:
        if value_type in _SCALARS:
            return self.scalar(_SCALARS[value_type])
        if value_type == _STRING:
            return self.string()
        if value_type != _ARRAY:
            raise self.corrupt(f"unknown value type {value_type}")
        if depth >= limits.GGUF_ARRAY_DEPTH:
            raise self.corrupt(f"arrays nested over {limits.GGUF_ARRAY_DEPTH} deep")
        item_type = int(self.scalar("<I"))
        count = self.count(limits.GGUF_ARRAY_ITEMS)
        if item_type in _SCALARS and count > _MAX_KEPT_ARRAY:
            self.take(struct.calcsize(_SCALARS[item_type]) * count)
            return None
        if count > _MAX_KEPT_ARRAY:  # read past a tokenizer's strings without keeping them
            for _ in range(count):
                self.value(item_type, depth + 1)
            return None
        return [self.value(item_type, depth + 1) for _ in range(count)]


def header_count(metadata: dict[str, GgufValue], key: str, path: Path, limit: int = _MAX_COUNT,
                 per_layer: bool = False) -> int | None:
    """``GgufInfo.count`` over a metadata dict (the header is read before its ``GgufInfo`` exists)."""
    value = metadata.get(key)
    if value is None:
        return None
    values = value if isinstance(value, list) and per_layer else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ModelError(f"模型文件已损坏（{key} 不是数字）/ GGUF header value {key} is not a number: {path}")
    if not all(math.isfinite(v) and v == int(v) and 0 <= v <= limit for v in values):  # type: ignore[arg-type]
        raise ModelError(f"模型文件参数无效（{key} = {value}），文件已损坏 / the GGUF header's {key} is not a "
                         f"whole number in range: {path}")
    return int(max(values))  # type: ignore[type-var]


def read_gguf_header(path: str | Path) -> GgufInfo:
    """Parse metadata and tensor table; raise ModelError for a missing, foreign, truncated or corrupt file."""
    path = Path(path)
    try:
        if not path.exists():
            raise ModelError(f"找不到模型文件 / model file not found: {path}")
        if not path.is_file():
            raise ModelError(f"模型路径不是文件 / model path is not a file: {path}")
        with path.open("rb") as handle:
            file_size = path.stat().st_size
            return _read(_Reader(handle, path), file_size)
    except (OSError, ValueError) as exc:  # ValueError: a path the system refuses (a NUL byte)
        raise ModelError(f"无法读取模型文件 / cannot read the model file {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None


def _read(reader: _Reader, file_size: int) -> GgufInfo:
    path = reader._path
    if reader._handle.read(4) != GGUF_MAGIC:
        raise ModelError(f"不是 GGUF 模型文件 / not a GGUF model file: {path}")
    version = reader.scalar("<I")
    if version not in (2, 3):
        raise ModelError(f"不支持的 GGUF 版本 {version} / unsupported GGUF version: {path}")
    tensor_count = reader.count(limits.GGUF_TENSORS)
    kv_count = reader.count(limits.GGUF_KEYS)
    metadata: dict[str, GgufValue] = {}
    for _ in range(kv_count):
        key = reader.string()
        metadata[key] = reader.value(int(reader.scalar("<I")))
    data_end = 0
    tensor_bytes: dict[str, int] = {}
    tensor_shapes: dict[str, tuple[int, ...]] = {}
    n_vocab = None
    for _ in range(tensor_count):
        name = reader.string()
        n_dims = int(reader.scalar("<I"))
        if n_dims > _MAX_DIMS:
            raise reader.corrupt(f"tensor {name[:40]} has {n_dims} dimensions")
        dims = [reader.count(_MAX_COUNT) for _ in range(n_dims)]
        tensor_type = int(reader.scalar("<I"))
        offset = reader.count(_MAX_COUNT)
        tensor_bytes[name] = _tensor_bytes(tensor_type, dims)
        tensor_shapes[name] = tuple(dims)
        if name == "token_embd.weight" and len(dims) == 2:
            n_vocab = dims[1]
        data_end = max(data_end, offset + tensor_bytes[name])
    alignment = header_count(metadata, "general.alignment", path, _MAX_ALIGNMENT)
    alignment = DEFAULT_ALIGNMENT if alignment is None else alignment
    if alignment == 0 or alignment & (alignment - 1):
        raise ModelError(f"模型文件已损坏（对齐 {alignment} 不是 2 的幂）/ GGUF alignment is not a power of two: {path}")
    data_start = -(-reader._handle.tell() // alignment) * alignment
    if data_start + data_end > file_size:
        raise ModelError(
            f"模型文件不完整（可能下载中断）/ GGUF file is truncated: {file_size} bytes, "
            f"tensors need {data_start + data_end}: {path}"
        )
    info = GgufInfo(path=path, file_size=file_size, version=int(version), architecture="", name=path.stem,
                    context_length=None, quantization="unknown", chat_template=None, block_count=None,
                    tensor_count=tensor_count, metadata=metadata, tensor_bytes=tensor_bytes, n_vocab=n_vocab,
                    tensor_shapes=tensor_shapes)
    architecture = info.text("general.architecture") or ""
    file_type = info.count("general.file_type")
    return replace(
        info,
        architecture=architecture,
        name=metadata["general.name"] if isinstance(metadata.get("general.name"), str) else path.stem,
        context_length=info.count(f"{architecture}.context_length"),
        quantization=FILE_TYPES.get(file_type, f"type{file_type}") if file_type is not None else "unknown",
        chat_template=info.text("tokenizer.chat_template"),
        block_count=info.count(f"{architecture}.block_count", limits.GGUF_TENSORS),
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
