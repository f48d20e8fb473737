"""Bad input and failing disks through the real ``python -m celeblook`` process: exit code 2, exactly one line on
stderr, no traceback, and nothing left behind (no file of a half-done command: results are written under
temporary names and moved into ``--out`` only when all of them are).

Read-only folders and full disks are simulated by tests/faulty_fs.py (see there why, and how). Every run loads
the CLI afresh (a few seconds each); the checks that need no models come before the models load.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from real_photos import astronaut

from celeblook.factory import create_generator
from celeblook.media import to_uint8

REPO = Path(__file__).resolve().parents[1]
FAULTY = Path(__file__).resolve().parent / "faulty_fs.py"
TIMEOUT_S = 300
TINY = ["--preset", "tiny", "--size", "256"]
FULL_DISK = {"FAULTY_FSIZE": "4096"}  # every result file is larger: its write fails part way through
EVAL = ["eval", "--preset", "tiny", "--n", "1", "--refine-steps", "1", "--edit-prompts", "1", "--strength-pairs", "2"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """An FFHQ-framed face of the tiny generator (face.png), its W+ (face.npy) and a photo of a person (person.png)."""
    folder = tmp_path_factory.mktemp("inputs")
    generator = create_generator("tiny")
    with torch.no_grad():
        wplus = generator.z_to_wplus(generator.seeded_z(1), 0.7)
        Image.fromarray(to_uint8(generator(wplus, size=256))[0]).save(folder / "face.png")
    np.save(folder / "face.npy", wplus[0].numpy())
    astronaut().save(folder / "person.png")
    (folder / "weights").mkdir()  # no installed heads: tiny's seeded stand-ins, whatever this machine has
    return folder


def cases(inputs: Path, tmp: Path) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (arguments, environment, what the one line says). ``tmp/ro`` is a read-only folder, ``tmp/out`` the
    output folder (absent unless the case makes it), ``tmp/file`` a file."""
    face, latent = str(inputs / "face.png"), str(inputs / "face.npy")
    ro, out = tmp / "ro", str(tmp / "out")
    read_only = {"FAULTY_READONLY": str(ro)}
    edit = ["edit", "--latent", latent, "--target", "a face with glasses", *TINY]
    return {
        "read-only invert": (["invert", face, "--aligned", *TINY, "--out", str(ro)], read_only, f"{ro}: Read-only file system"),
        "read-only text": (["text", "a smiling face", *TINY, "--out", str(ro)], read_only, f"{ro}: Read-only file system"),
        "read-only edit": ([*edit, "--out", str(ro)], read_only, f"{ro}: Read-only file system"),
        "read-only morph": (["morph", latent, latent, "--frames", "2", *TINY, "--out", str(ro)], read_only,
                            f"{ro}: Read-only file system"),
        "read-only align": (["align", str(inputs / "person.png"), "--out", str(ro)], read_only, f"{ro}: Read-only file system"),
        "read-only export onnx": (["export", "onnx", "--preset", "tiny", "--models", "mapping", "--out", str(ro)], read_only,
                                  f"{ro}: Read-only file system"),
        # refused before the evaluation runs: a single line on stderr means its progress bar never started
        "read-only eval": ([*EVAL, "--out", str(ro / "eval.json")], read_only, f"{ro}: Read-only file system"),
        "eval --out is a folder": ([*EVAL, "--out", str(ro)], {}, f"cannot write {ro}: it is a folder"),
        "full disk invert": (["invert", face, "--aligned", *TINY, "--out", out], FULL_DISK, "File too large"),
        "full disk edit": ([*edit, "--out", out], FULL_DISK, "File too large"),
        "a result's name is a folder (invert)": (["invert", face, "--aligned", *TINY, "--out", out], {},
                                                  f"{tmp / 'out' / 'inversion.png'}: a folder has that name"),
        # render writes its PNG first, which may not stay when latents.npy cannot be written
        "a result's name is a folder (render)": (["render", "--wplus", latent, *TINY, "--out", out], {},
                                                  f"{tmp / 'out' / 'latents.npy'}: a folder has that name"),
        "invert of a latent": (["invert", latent, *TINY, "--out", out], {}, "invert takes a photo"),
        "seed past 2**32-1": (["generate", "--seeds", "4294967296", *TINY, "--out", out], {}, "0..4294967295"),
        "train --lr nan": (["train", "mapper", "--preset", "tiny", "--lr", "nan", "--out", out], {},
                           "argument --lr: must be a finite number above 0, got 'nan'"),
        "train --out a file": (["train", "mapper", "--preset", "tiny", "--out", str(tmp / "file")], {},
                               "it exists and is not a directory"),
        "train --device tpu:9": (["train", "mapper", "--preset", "tiny", "--device", "tpu:9", "--out", out], {},
                                 "argument --device: unknown device 'tpu:9'"),
        "train --device cuda:99": (["train", "encoder", "--preset", "tiny", "--device", "cuda:99", "--out", out], {},
                                   "argument --device: cuda:99"),
        "edit --gif --frames 1": ([*edit, "--gif", "--frames", "1", "--out", out], {}, "frames must be from 2"),
    }


CASES = list(cases(Path("inputs"), Path("tmp")))


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder``: a file's bytes, None for a folder."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def run_cli(args: list[str], env: dict[str, str], weights: Path) -> subprocess.CompletedProcess:
    """``python -m celeblook ARGS`` through tests/faulty_fs.py; its whole process group is killed on a timeout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "1",
           "CELEBLOOK_WEIGHTS": str(weights), **env}
    with subprocess.Popen([sys.executable, str(FAULTY), *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(inputs, tmp_path, case):
    args, env, says = cases(inputs, tmp_path)[case]
    (tmp_path / "ro").mkdir()
    (tmp_path / "file").write_text("a file, not a folder\n")
    if "name is a folder" in case:
        blocked = "inversion.png" if "invert" in case else "latents.npy"
        (tmp_path / "out" / blocked).mkdir(parents=True)
    before = snapshot(tmp_path)
    done = run_cli(args, env, inputs / "weights")
    lines = done.stderr.splitlines()  # also splits a progress bar's carriage returns
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: ") or ": error: " in lines[0], lines[0]  # ours, or argparse's
    assert says in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # nothing written, nothing half-written, no temporary left behind
    if case == "read-only eval":
        assert done.stdout == ""  # the evaluation's table was never printed: it did not run


def test_results_appear_in_out_once_complete_and_nothing_else_does(inputs, tmp_path, monkeypatch, capsys):
    """The staged writes' good path: every file in its place (a subfolder too), the JSON lines naming them there,
    and no temporary folder left."""
    from celeblook.cli import main

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(inputs / "weights"))
    out = tmp_path / "out"
    assert main(["edit", "--latent", str(inputs / "face.npy"), "--target", "a face with glasses", "--gif", "--frames", "2",
                 *TINY, "--out", str(out)]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "edit.npy", "edit.png", "sweep", "sweep/sweep.gif", "sweep/sweep_000.npy", "sweep/sweep_000.png",
        "sweep/sweep_001.npy", "sweep/sweep_001.png"]
    printed = [json.loads(line)["file"] for line in capsys.readouterr().out.splitlines()]
    assert printed == [str(out / name) for name in ("edit.png", "sweep/sweep_000.png", "sweep/sweep_001.png", "sweep/sweep.gif")]


def test_a_system_error_no_command_caught_is_one_line(monkeypatch, capsys):
    """The last resort in ``main``: the system's refusal (errno set) is one line naming the file; an OSError a
    library raised without one is a bug and keeps its traceback."""
    from celeblook.cli import main, render

    def full_disk(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/run/checkpoint.json")

    monkeypatch.setattr(render, "run_generate", full_disk)
    assert main(["generate", "--seeds", "1", "--out", "x"]) == 2
    assert capsys.readouterr().err == f"error: /data/run/checkpoint.json: {os.strerror(errno.ENOSPC)}\n"

    def library_bug(args):
        raise OSError("cannot write mode RGBA as JPEG")

    monkeypatch.setattr(render, "run_generate", library_bug)
    with pytest.raises(OSError, match="RGBA"):
        main(["generate", "--seeds", "1", "--out", "x"])
