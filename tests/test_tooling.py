"""The repository's own tooling: ruff is clean (pyproject.toml), and `bash dev.sh <cmd>` runs in the caller's folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import procs
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    run = procs.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", str(REPO)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1000:]


@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "python").exists(), reason="dev.sh's environment (.venv) is not set up")
def test_dev_sh_runs_commands_in_the_callers_folder(tmp_path):
    """`bash dev.sh python script.py me.jpg` from another folder: relative paths are the caller's, the package imports."""
    (tmp_path / "me.txt").write_text("hello")
    script = "import sys, celeblook; print(open(sys.argv[1]).read(), celeblook.__name__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = procs.run(["bash", str(REPO / "dev.sh"), "python", "-c", script, "me.txt"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "hello celeblook"
