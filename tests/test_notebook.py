"""notebooks/publish_heads.ipynb, executed end to end so that it cannot rot: nbclient runs it in a kernel of this
interpreter on the tiny preset (``INSTALL=0``: this environment has the checkout), against the stand-in Hub
(tests/hub_standin.py), twice: the second run is what a user does after a disconnect, and must redo nothing.

``TRAIN_ARGS`` cuts the training steps (the test takes 1.7-2.3 min on the 2-core development machine; with the tiny
preset's default steps 5-6 min): what is checked here is the notebook's plumbing, and train all's own tests check
the training."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from hub_standin import WHOAMI, hub_fixture  # noqa: F401  (the `hub` fixture)
from nbclient import NotebookClient

from celeblook.hub.heads import INDEX
from celeblook.training.all import STAGES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "publish_heads.ipynb"
KERNEL = "celeblook-notebook-test"
CELL_TIMEOUT = 1800  # s: `train all --preset tiny` took 3 min on the idle 2-core machine, 5.5 min at load 3-7
HEADS = f"{WHOAMI}/celeblook-heads-tiny"  # the notebook's default names, from whoami
SPACE = f"spaces/{WHOAMI}/celeblook"
SKIPPED = "done in an earlier run, skipped"
# the train cell's TRAIN_ARGS: few steps per stage, but the mapper's own 200 (a 20-step mapper's latents send G's
# pixels to ~1e6, which the refiner, reading both images clamped, survives; its figures would mean nothing)
QUICK = ("--strength-steps 6 --encoder-steps 4 --refiner-steps 2 --refiner-batch 2 --refiner-calibration-faces 0 "
         "--refiner-eval-n 2 --refiner-optimise-steps 1")


def test_the_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {cell.id} has outputs: clear them"


def kernel_spec(folder: Path) -> Path:
    """A kernel spec running ipykernel in this interpreter (the venv with the checkout), found first through
    JUPYTER_PATH, so no other python3 kernel of the machine is picked."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "celeblook test", "language": "python"}))
    return folder


def processes_with(marker: str) -> list[int]:
    """Processes whose environment holds ``marker``: the kernel and everything it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def execute(nb_path: Path, cwd: Path) -> dict[str, str]:
    """Runs the notebook; returns each code cell's text output by cell id."""
    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT, shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    print("seconds per cell:", ", ".join(f"{cell.id} {seconds(cell):.0f}" for cell in cells))
    return {cell.id: "".join(o.get("text", "") for o in cell.outputs) for cell in cells}


def seconds(cell) -> float:
    """A cell's run time, from the timestamps nbclient records."""
    times = cell.metadata["execution"]
    start, end = (datetime.fromisoformat(times[k].replace("Z", "+00:00")) for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the Space build fetches the page's runtime")
def test_the_notebook_trains_publishes_and_uploads_the_space_and_a_rerun_redoes_nothing(hub, tmp_path, monkeypatch):
    out, space = tmp_path / "run", tmp_path / "space"
    marker = uuid.uuid4().hex
    env = {
        "PRESET": "tiny", "OUT": str(out), "SPACE_DIR": str(space), "INSTALL": "0",
        "HF_TOKEN": "hf_standin", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "CELEBLOOK_WEIGHTS": str(tmp_path / "weights"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JUPYTER_PATH": str(kernel_spec(tmp_path / "jupyter")), "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(tmp_path / "ipython"), "CELEBLOOK_NOTEBOOK_TEST": marker,
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # upload_folder's bars want ipywidgets in a kernel
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRAIN_ARGS", QUICK)
    for name in ("HEADS_REPO", "SPACE_REPO", "SOURCE"):
        monkeypatch.delenv(name, raising=False)
    marker = f"CELEBLOOK_NOTEBOOK_TEST={marker}"
    try:
        started = time.perf_counter()
        first = execute(NOTEBOOK, tmp_path)
        print(f"first run: {time.perf_counter() - started:.0f} s")
        assert "GPU:" in first["install"] and f"as {WHOAMI}: heads -> {HEADS}" in first["login"]

        # the heads: every file of the index, as train all left it in OUT
        heads = hub.files(HEADS)
        index = json.loads(heads[INDEX])
        assert index["preset"] == "tiny" and "README.md" in heads
        assert {"mapper.safetensors", "strength.safetensors", "onnx/manifest.json"} <= set(index["files"])
        for name, entry in index["files"].items():
            assert heads[name] == (out / name).read_bytes() and sha256(heads[name]) == entry["sha256"], name

        # the Space: the page as built, without the build's marker or any model; its models are the heads
        # repository's at the commit just published, each as the page's manifest lists it
        site = hub.files(SPACE)
        built = {p.relative_to(space).as_posix(): p.read_bytes() for p in space.rglob("*") if p.is_file()}
        assert set(site) == set(built) - {".celeblook-build"} and all(site[k] == built[k] for k in site)
        assert "sdk: static" in site["README.md"].decode() and not any(k.endswith(".onnx") for k in site)
        commit = hub.branches[HEADS]["main"]
        assert json.loads(site["site.json"])["models_url"] == f"{hub.url}/{HEADS}/resolve/{commit}/onnx/"
        listed = json.loads(site["models/manifest.json"])["files"]
        assert listed and any(e["model"] == "mapper" for e in listed)
        for entry in listed:
            assert sha256(hub.commits[commit][f"onnx/{entry['file']}"]) == entry["sha256"], entry["file"]

        # after a disconnect the user runs it all again: nothing is trained again, both uploads are redone
        started = time.perf_counter()
        again = execute(NOTEBOOK, tmp_path)
        print(f"second run: {time.perf_counter() - started:.0f} s")
        assert again["train"].count(SKIPPED) == len(STAGES), again["train"]
        assert hub.files(HEADS)[INDEX] != heads[INDEX]  # published again (the index records when)
        commit = hub.branches[HEADS]["main"]
        assert f"/resolve/{commit}/onnx/" in json.loads(hub.files(SPACE)["site.json"])["models_url"]
        assert len(hub.messages) == 4  # heads, Space, heads, Space
    finally:
        left = processes_with(marker)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, signal.SIGKILL)
    assert not left, f"the notebook left processes behind: {left}"

