"""Shared fixtures. Every test gets its own config and data dirs; the demo model comes from the user cache
(``bash setup.sh`` installs it). Data from ../shared is read in place, and tests needing it skip without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RECORD = REPO_ROOT / "resources" / "samples" / "sample_record.txt"
SHARED_DIR = REPO_ROOT.parent / "shared"


# A test that uses the real demo model is slow on a CPU wherever it sits; marking by fixture keeps the fast loop
# honest without a marker on each test.
_SLOW_FIXTURES = {"demo_model_path", "demo_engine"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("medbrief_user")
    monkeypatch.setenv("MEDBRIEF_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("MEDBRIEF_DATA_DIR", str(home / "data"))
    monkeypatch.delenv("MEDBRIEF_MODEL", raising=False)


@pytest.fixture(scope="session")
def demo_model_path() -> Path:
    from inference.errors import ModelError
    from inference.llm.demo_model import require_demo_model

    try:
        return require_demo_model()
    except ModelError as exc:
        pytest.fail(f"{exc.message} (the README's test command installs it)")


@pytest.fixture(scope="session")
def demo_engine(demo_model_path: Path) -> Iterator["object"]:
    from inference.llm.engine import Engine
    from inference.llm.settings import EngineSettings

    engine = Engine(EngineSettings(model_path=None))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def sample_text() -> str:
    return SAMPLE_RECORD.read_text(encoding="utf-8").strip()


def shared_path(*parts: str) -> Path:
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared data not available here: {path}")
    return path


# Captured before any test redirects the data dir: where setup.sh installed the bundled ICD table.
from inference.paths import data_dir as _data_dir  # noqa: E402

INSTALLED_DATA_DIR = _data_dir()


@pytest.fixture(scope="session")
def icd_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding the bundled WHO table (installed by setup) and, when ../shared is present,
    what the lookup learns from CHIP-CDN train (synonyms, cues, examples, ranker) — copied from the
    user data dir when setup built it there from the same inputs and code, else learned here (~1 min)."""
    import shutil

    source = INSTALLED_DATA_DIR / "icd_tables" / "who-zh.sqlite"
    if not source.exists():
        pytest.fail(f"bundled ICD table missing at {source}; run `bash setup.sh` (the README's test command does)")
    home = tmp_path_factory.mktemp("icd_home")
    (home / "icd_tables").mkdir()
    shutil.copy(source, home / "icd_tables" / "who-zh.sqlite")
    train = SHARED_DIR / "eval" / "chip_cdn" / "CHIP-CDN_train.json"
    beijing = SHARED_DIR / "data" / "icd10" / "beijing_v601" / "icd10_beijing_v601.csv"
    if train.exists() and beijing.exists():
        from inference.icd.table import load_table
        from inference.icd_training.learning import LEARNED_FILES, build, is_current

        if is_current(train, beijing, INSTALLED_DATA_DIR):
            for name in LEARNED_FILES:
                shutil.copy(INSTALLED_DATA_DIR / name, home / name)
        else:
            build(train, beijing, home, load_table(home / "icd_tables" / "who-zh.sqlite"))
    return home


@pytest.fixture
def icd_data(icd_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDBRIEF_DATA_DIR", str(icd_home))
    return icd_home
