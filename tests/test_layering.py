"""The core's layers: ``inference`` works with Qt unavailable, each part imports only what its layer allows,
the allowed imports themselves run one way (napari's "layers" contract), and an import hidden inside a
function is there for start-up time or an optional dependency, saying which."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from tests.conftest import REPO_ROOT

CORE = REPO_ROOT / "inference"

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
    from inference.open_record import OpenRecord
    record = OpenRecord(load_document("resources/samples/sample_record.txt"))
    assert "LVEF 38%" in record.document.text and record.can_copy
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"PySide6", "shiboken6", "desktop"})
    print("loaded:", ",".join(loaded) or "none")
    """
)


def test_inference_imports_and_runs_with_qt_blocked() -> None:
    proc = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr  # an import of Qt or desktop anywhere in inference/ raises
    assert proc.stdout.strip() == "loaded: none"


# What each part of the core may import. ``record`` is the bottom everything above may use (the summary, its
# evidence, text analysis); the engine knows nothing of summaries, checks or codes; the checks know the summary
# model, never the summarizer, and get the code table's names passed in; nothing that ships imports the
# build-time ICD training; only the CLI sees everything.
ALLOWED = {
    "errors": set(),
    "paths": set(),
    "tsv_files": set(),
    "limits": set(),
    "crash_log": {"", "errors", "paths"},
    "record": {"errors", "limits", "paths", "tsv_files"},
    "documents": {"errors", "limits", "record"},
    "progress": {"errors"},
    "llm": {"errors", "limits", "paths"},
    "templates": {"record", "errors", "paths"},
    "checks": {"record", "errors", "paths", "templates", "tsv_files"},
    "summary": {"record", "checks", "llm", "errors", "paths", "progress", "templates"},
    "icd": {"record", "llm", "documents", "errors", "limits", "paths", "progress", "tsv_files"},
    "export": {"icd", "record", "templates"},
    "history": {"record", "checks", "documents", "errors", "export", "icd", "limits", "paths", "templates"},
    "pipeline": {"record", "checks", "documents", "errors", "history", "icd", "llm", "progress", "summary",
                 "templates"},
    "open_record": {"record", "checks", "documents", "export", "icd", "pipeline", "summary", "templates"},
    "server_check": {"documents", "errors", "icd", "llm", "paths", "pipeline", "summary"},
    "cli": {"", "record", "checks", "crash_log", "documents", "errors", "export", "history", "icd", "limits", "llm", "paths",
            "pipeline", "progress", "server_check", "summary", "templates"},
    "__main__": {"cli"},
}
# An import inside a function must say why it is there: for start-up time (a heavy or native library loaded
# only when used) or an optional dependency. The CLI loads each command's modules when the command runs.
LAZY_REASONS = ("start-up time", "optional")
MAX_LAZY_OUTSIDE_CLI = 5


def _import_nodes(path: Path) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import of the module, with whether it sits inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(node) for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))}
    return [(node, id(node) in inside) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _core_modules(node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.ImportFrom):
        if node.module == "inference":  # from inference import limits: the module named, or the package itself
            return {f"inference.{alias.name}" if alias.name != "__version__" else "inference" for alias in node.names}
        return {node.module} if node.module and node.module.startswith("inference") else set()
    return {alias.name for alias in node.names if alias.name.startswith("inference")}


def _part(path: Path) -> str:
    return path.relative_to(CORE).parts[0].removesuffix(".py")


def _shipping_modules() -> list[Path]:
    return [p for p in sorted(CORE.rglob("*.py"))
            if "migrations" not in p.parts and not (p.name == "__init__.py" and p.parent == CORE)]


def test_nothing_that_ships_imports_the_icd_training() -> None:
    training = CORE / "icd" / "training"
    broken = [
        f"{path.relative_to(REPO_ROOT)} imports {module}"
        for path in sorted(CORE.rglob("*.py")) if training not in path.parents
        for node, _lazy in _import_nodes(path) for module in _core_modules(node)
        if module.startswith("inference.icd.training")
    ]
    assert broken == []
    spec = (REPO_ROOT / "packaging" / "medbrief.spec").read_text(encoding="utf-8")
    assert '"inference.icd.training"' in spec and '"sklearn"' in spec


def test_each_part_of_the_core_imports_only_what_its_layer_allows() -> None:
    broken = []
    for path in _shipping_modules():
        part = _part(path)
        assert part in ALLOWED, f"{path.relative_to(REPO_ROOT)}: a new part of the core needs its row in ALLOWED"
        for node, _lazy in _import_nodes(path):  # imports inside functions count too
            for module in _core_modules(node):
                target = (module.split(".") + [""])[1]
                if target != part and target not in ALLOWED[part]:
                    broken.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert broken == []


def test_the_allowed_imports_run_one_way() -> None:
    graph = {part: {target for target in targets if target} for part, targets in ALLOWED.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"the layers have a cycle: {' → '.join(exc.args[1])}") from None
    assert order.index("record") < order.index("checks") < order.index("summary") < order.index("pipeline")


def test_the_cycle_check_finds_a_cycle() -> None:
    """The contract above can fail: a table with checks ↔ summary is refused."""
    graph = {**ALLOWED, "checks": ALLOWED["checks"] | {"summary"}}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError:
        return
    raise AssertionError("a cycle went unnoticed")


def test_imports_inside_functions_say_why_and_are_few_outside_the_cli() -> None:
    unexplained, lazy_outside_cli = [], []
    for path in _shipping_modules():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node, lazy in _import_nodes(path):
            if not lazy or _part(path) == "cli":
                continue
            lazy_outside_cli.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
            said = lines[node.lineno - 1] + lines[node.lineno - 2]
            if not any(reason in said for reason in LAZY_REASONS):
                unexplained.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert unexplained == []
    assert len(lazy_outside_cli) <= MAX_LAZY_OUTSIDE_CLI, lazy_outside_cli


def test_no_module_of_the_app_is_a_grab_bag() -> None:
    """One job per module: none over 450 lines (the window under 350)."""
    too_long = [f"{p.relative_to(REPO_ROOT)}: {n}" for p in [*CORE.rglob("*.py"), *(REPO_ROOT / "desktop").glob("*.py")]
                if (n := len(p.read_text(encoding="utf-8").splitlines())) > 450]
    assert too_long == []
    assert len((REPO_ROOT / "desktop" / "main_window.py").read_text(encoding="utf-8").splitlines()) < 350
