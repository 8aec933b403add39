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
    from inference.summary_schema import render_emr_text, StructuredSummary
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
