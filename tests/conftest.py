import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CELEBLOOK_SHARED", REPO.parent / "shared"))
CONFORMANCE = SHARED / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not (CONFORMANCE / "mobilestylegan_seed1234.npz").exists():
        pytest.skip(f"conformance vectors not found at {CONFORMANCE} (they ship only beside the team's checkout)")
    return CONFORMANCE


@pytest.fixture(scope="session", autouse=True)
def _gradio_files_in_the_session_folder(tmp_path_factory):
    """Gradio caches every served file under GRADIO_TEMP_DIR (default /tmp/gradio, never emptied): the app servers
    the tests start (and their subprocesses) write into the session's own folder, which pytest removes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        yield


@pytest.fixture(autouse=True)
def _no_preset_from_the_environment(monkeypatch):
    """Each test picks its preset itself: neither the user's shell nor the app tests' import leaks one in."""
    monkeypatch.delenv("CELEBLOOK_PRESET", raising=False)
