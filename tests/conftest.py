"""Shared fixtures. Every test gets its own config and data dirs; the demo model comes from the user cache
(``bash setup.sh`` installs it). Data from ../shared is read in place, and tests needing it skip without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings

# The fuzz tests run the same examples on every run (CI fails or passes for the code, not for the draw); an
# example may take 5 s on a busy 2-core machine before it counts as hanging.
settings.register_profile("medbrief", derandomize=True, database=None, deadline=timedelta(seconds=5),
                          print_blob=True)
settings.load_profile("medbrief")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_RECORD = REPO_ROOT / "resources" / "samples" / "sample_record.txt"
SHARED_DIR = REPO_ROOT.parent / "shared"


# A test that uses the real demo model is slow on a CPU wherever it sits; marking by fixture keeps the fast loop
# honest without a marker on each test.
_SLOW_FIXTURES = {"demo_model_path", "demo_engine", "any_engine", "llama_server_url", "llama_cpp_server_url",
                  "real_server"}


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


@pytest.fixture()
def department(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty department folder of summary templates (``paths.templates_dir``) for this test."""
    folder = tmp_path / "templates"
    folder.mkdir()
    monkeypatch.setenv("MEDBRIEF_TEMPLATES_DIR", str(folder))
    return folder


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
def llama_server_url(demo_model_path: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the demo model on 127.0.0.1, for the whole session."""
    yield from _serving("llama-cpp-python", demo_model_path)


@pytest.fixture(scope="session")
def llama_cpp_server_url(demo_model_path: Path) -> Iterator[str]:
    """llama.cpp's ``llama-server --parallel 4`` with the demo model on 127.0.0.1, for the whole session."""
    yield from _serving("llama-server", demo_model_path)


@pytest.fixture(scope="session", params=["llama-cpp-python", "llama-server"])
def real_server(request: pytest.FixtureRequest) -> str:
    """The same test against each real server a department may run."""
    return request.getfixturevalue("llama_server_url" if request.param == "llama-cpp-python" else "llama_cpp_server_url")


def _serving(kind: str, model: Path) -> Iterator[str]:
    from tests.llama_server import start_server

    process, url = start_server(kind, model)
    yield url
    process.kill()
    process.wait()


@pytest.fixture(scope="session", params=["embedded", "llama-server"])
def any_engine(request: pytest.FixtureRequest) -> "object":
    """The same test on both backends: the embedded engine, and the server backend against llama.cpp's
    llama-server serving the same demo model."""
    if request.param == "embedded":
        return request.getfixturevalue("demo_engine")
    from inference.llm.server import ServerEngine
    from tests.llama_server import server_settings

    return ServerEngine(server_settings(request.getfixturevalue("llama_cpp_server_url")))


@pytest.fixture(scope="session")
def sample_text() -> str:
    return SAMPLE_RECORD.read_text(encoding="utf-8").strip()


def shared_path(*parts: str) -> Path:
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared data not available here: {path}")
    return path


@pytest.fixture(scope="session")
def icd_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty data dir: the bundled table and the learned lookup ship in resources/, so a user who never
    ran setup codes exactly as the measured product does."""
    return tmp_path_factory.mktemp("icd_home")


@pytest.fixture
def icd_data(icd_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MEDBRIEF_DATA_DIR", str(icd_home))
    return icd_home
