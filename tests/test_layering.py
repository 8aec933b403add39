"""``inference`` is the headless core: it must import and work with Qt (and ``desktop``) unavailable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

BLOCK_QT = textwrap.dedent(
    """
    import importlib.abc, pkgutil, sys

    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"PySide6", "shiboken6", "PyQt5", "PyQt6", "desktop"}:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockQt())
    import inference
    for module in pkgutil.walk_packages(inference.__path__, "inference."):
        if not module.name.endswith("__main__"):
            __import__(module.name)
    from inference.documents import load_document
    from inference.summary.schema import render_emr_text, StructuredSummary
    doc = load_document("resources/samples/sample_record.txt")
    assert "LVEF 38%" in doc.text
    print("imported", len([m for m in sys.modules if m.startswith("inference")]), "modules without Qt")
    """
)


def test_inference_imports_and_runs_with_qt_blocked() -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "without Qt" in proc.stdout
    assert not any(name.startswith("PySide6") for name in proc.stdout.split())


# What each part of the core may import (napari-style enforced layering). The engine knows nothing of
# summaries, checks or codes; nothing that ships imports the build-time ICD training; only the CLI and the
# pipeline see everything. Lazy imports inside functions count too.
ALLOWED = {
    "llm": {"errors", "paths"},
    "progress": {"errors"},
    "documents": {"errors"},
    "tsv_files": set(),
    "paths": set(),
    "errors": set(),
    "summary": {"llm", "checks", "errors", "paths", "progress"},
    "checks": {"summary", "icd", "errors", "paths", "tsv_files"},
    "icd": {"llm", "checks", "documents", "errors", "paths", "progress", "tsv_files"},
    "export": {"icd", "summary"},
    "history": {"checks", "documents", "errors", "export", "icd", "paths", "summary"},
    "pipeline": {"checks", "documents", "errors", "icd", "llm", "progress", "summary"},
    "cli": {"", "checks", "documents", "errors", "history", "icd", "llm", "paths", "pipeline", "progress", "summary"},
    "__main__": {"cli"},
}


def _imports(path) -> set[str]:  # type: ignore[no-untyped-def]
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("inference"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("inference")}
    return found


def test_nothing_that_ships_imports_the_icd_training() -> None:
    core = REPO_ROOT / "inference"
    training = core / "icd" / "training"
    broken = [
        f"{path.relative_to(REPO_ROOT)} imports {module}"
        for path in sorted(core.rglob("*.py")) if training not in path.parents
        for module in _imports(path) if module.startswith("inference.icd.training")
    ]
    assert broken == []
    spec = (REPO_ROOT / "packaging" / "medbrief.spec").read_text(encoding="utf-8")
    assert '"inference.icd.training"' in spec and '"sklearn"' in spec


def test_each_part_of_the_core_imports_only_what_its_layer_allows() -> None:
    core = REPO_ROOT / "inference"
    broken = []
    for path in sorted(core.rglob("*.py")):
        if "migrations" in path.parts or path.name == "__init__.py" and path.parent == core:
            continue
        part = path.relative_to(core).parts[0].removesuffix(".py")
        for module in _imports(path):
            target = (module.split(".") + [""])[1]
            if target != part and target not in ALLOWED[part]:
                broken.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert broken == []
