import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
# Gradio keeps every file it receives or serves under GRADIO_TEMP_DIR (default /tmp/gradio, never emptied). The
# apps of this run, in-process (app.py reads the folder when collection imports it) and in subprocesses, use one
# folder of their own, removed when the run ends.
GRADIO_FILES = tempfile.mkdtemp(prefix="celeblook-tests-gradio-")
os.environ.setdefault("GRADIO_TEMP_DIR", GRADIO_FILES)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CELEBLOOK_SHARED", REPO.parent / "shared"))
CONFORMANCE = SHARED / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not (CONFORMANCE / "mobilestylegan_seed1234.npz").exists():
        pytest.skip(f"conformance vectors not found at {CONFORMANCE} (they ship only beside the team's checkout)")
    return CONFORMANCE


@pytest.fixture(autouse=True)
def _no_preset_from_the_environment(monkeypatch):
    """Each test picks its preset itself: neither the user's shell nor the app tests' import leaks one in."""
    monkeypatch.delenv("CELEBLOOK_PRESET", raising=False)


def pytest_unconfigure(config):
    shutil.rmtree(GRADIO_FILES, ignore_errors=True)
