"""A hospital's LoRA adapter (GGUF), checked against the base model before anything is loaded.

llama.cpp refuses a wrong adapter with a line in its log and a bare "Failed to initialize LoRA adapter";
reading the adapter's header first says why in words a ward's IT can act on: not an adapter, made for
another architecture, or for another model of the same architecture (a tensor the base lacks, or a shape
that does not match it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from inference.errors import ModelError
from inference.llm.gguf_header import GgufInfo, read_gguf_header

_SUFFIXES = (".lora_a", ".lora_b")


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    name: str
    alpha: float
    tensor_pairs: int
    sha256_prefix: str

    def record(self, scale: float) -> str:
        """What history keeps with every run made with this adapter (fits the 260-character column)."""
        return f"{self.path.name[:180]} ×{scale:g} sha256:{self.sha256_prefix}"


def check_adapter(path: str | Path, base: GgufInfo) -> AdapterInfo:
    """Raise ModelError unless ``path`` is a GGUF LoRA adapter that fits ``base`` tensor by tensor."""
    path = Path(path).expanduser()
    try:
        found = path.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise ModelError(f"找不到 LoRA 适配器文件 / LoRA adapter not found: {path}")
    try:
        header = read_gguf_header(path)
        kind, adapter_type = header.text("general.type"), header.text("adapter.type")
        alpha = header.number("adapter.lora.alpha") or 0.0
    except ModelError as exc:
        raise ModelError(f"LoRA 适配器无法读取 / LoRA adapter unreadable: {exc.message}") from exc
    if kind != "adapter" or adapter_type != "lora":
        raise ModelError(f"该文件不是 LoRA 适配器（general.type={(kind or '')[:40]!r}，adapter.type="
                         f"{(adapter_type or '')[:40]!r}）/ not a GGUF LoRA adapter: {path}")
    if header.architecture != base.architecture:
        raise ModelError(f"LoRA 适配器是为 {header.architecture or '未知'} 架构训练的，与当前模型（{base.architecture}）"
                         f"不匹配 / adapter made for another architecture: {path.name}")
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in header.tensor_shapes.items():
        base_name, dot, part = name.rpartition(".")
        if f".{part}" not in _SUFFIXES:
            raise ModelError(f"LoRA 适配器中有无法识别的张量 {name} / unexpected tensor in the adapter: {path.name}")
        pairs.setdefault(base_name, {})[part] = shape
    if not pairs:
        raise ModelError(f"LoRA 适配器不含任何权重 / the adapter holds no weights: {path.name}")
    for base_name, parts in pairs.items():
        _check_pair(base_name, parts, base, path)
    return AdapterInfo(path=path, name=header.name, alpha=alpha,
                       tensor_pairs=len(pairs), sha256_prefix=_sha256_prefix(path))


def _check_pair(base_name: str, parts: dict[str, tuple[int, ...]], base: GgufInfo, path: Path) -> None:
    other_model = f"LoRA 适配器不是为当前模型（{base.name}）训练的：{{}} / adapter made for another base model: {path.name}"
    if set(parts) != {"lora_a", "lora_b"}:
        raise ModelError(f"LoRA 适配器中 {base_name} 缺少 lora_a 或 lora_b / incomplete tensor pair: {path.name}")
    target = base.tensor_shapes.get(base_name)
    if target is None:
        raise ModelError(other_model.format(f"基础模型中没有 {base_name}"))
    a, b = parts["lora_a"], parts["lora_b"]
    if len(target) != 2 or len(a) != 2 or len(b) != 2:
        raise ModelError(other_model.format(f"{base_name} 的维度不是二维"))
    # ggml dims, fastest first; llama.cpp's own check (llama-adapter.cpp), token embedding flipped
    if base_name == "token_embd.weight":
        fits = target[0] == b[1] and target[1] == a[1]
    else:
        fits = target[0] == a[0] and target[1] == b[1] and a[1] == b[0]
    if not fits:
        raise ModelError(other_model.format(f"{base_name} 形状 {list(target)} 与适配器 {list(a)}/{list(b)} 不符"))


def _sha256_prefix(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
