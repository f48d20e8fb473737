"""``train all --preset ffhq --rehearse``: the real-size models with seeded weights, every stage, the Space and the
model card, every artefact checked; and the checker catches a broken artefact, the command then ending in one line.

The rehearsal's export measures the parity of every real-size graph as it writes it (the ViT-L/14 towers, every
generator exit, the student and heads), so it stands in CI for tests/test_export.py's CELEBLOOK_SLOW tests. The file takes
about 5 minutes, a peak of 5.8 GB resident and 3 GB of disk on the 2-core development CPU (docs/training.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import procs
import pytest

from celeblook.errors import InputError
from celeblook.presets import get_preset
from celeblook.training.artefacts import PUBLISH, SPACE, TEACHER_EXPORT, check_artefacts
from celeblook.training.rehearse import smallest

REPO = Path(__file__).resolve().parents[1]
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: web build fetches the page's runtime")
pytestmark = [pytest.mark.rehearsal, needs_npm]


def rehearse(out: Path, home: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """The command, with no weights anywhere it could read them (an empty weights dir and Hugging Face cache)."""
    env = {**os.environ, "CELEBLOOK_WEIGHTS": str(home / "weights"), "HF_HOME": str(home / "hf"), "HF_HUB_OFFLINE": "1"}
    return procs.run([sys.executable, "-m", "celeblook", "train", "all", "--preset", "ffhq", "--rehearse", "--out",
                      str(out), "--device", "cpu"], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("rehearsal") / "out"
    start = time.perf_counter()
    done = rehearse(out, home)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    print(f"rehearsal: {time.perf_counter() - start:.0f} s")  # -s shows it
    return out, home, done


def test_the_rehearsal_runs_every_stage_at_real_size_and_passes_every_check(rehearsal):
    out, home, done = rehearsal
    lines = done.stdout.splitlines()
    assert lines[0].startswith("REHEARSAL of `train all --preset ffhq`: real-size models with SEEDED RANDOM WEIGHTS")
    assert lines[-1].endswith("checks passed") and lines[-1].startswith("REHEARSAL")
    assert not (home / "weights").exists() or not any((home / "weights").rglob("*.safetensors"))  # nothing fetched
    assert not (home / "hf").exists() or not any((home / "hf").rglob("*.safetensors"))
    checks = check_artefacts(out)
    assert checks and all(c.problem is None for c in checks), [c.line() for c in checks if c.problem]
    checked = {c.artefact for c in checks}
    assert {"mapper.safetensors", "strength.safetensors", "student_efficientformer_l1.safetensors", "eval.json",
            "synthesis_1024.onnx", "text_encoder_int8.onnx", "image_encoder_teacher.onnx", f"{PUBLISH}/README.md",
            f"{SPACE}/site.json", f"{SPACE}-models/"} <= checked
    # the stages ran the rehearsal's few steps on the real preset's models, named so they cannot pass for ffhq's
    record = json.loads((out / "train_all.json").read_text())
    assert record["preset"] == "ffhq-rehearsal" and list(record["stages"]) == ["mapper", "encoder", "strength", "refiner",
                                                                                      "eval", "export"]
    mapper = json.loads((out / "mapper.json").read_text())["provenance"]
    assert mapper["steps"] == 2 and mapper["train_config"]["image_size"] == 256 and mapper["trained"] is False
    manifest = json.loads((out / "onnx" / "manifest.json").read_text())
    assert manifest["source"]["preset"] == "ffhq-rehearsal"
    by_file = {e["file"]: e for e in manifest["files"]}
    assert by_file["synthesis_1024.onnx"]["outputs"][0]["shape"] == ["batch", 3, 1024, 1024]
    assert by_file["text_encoder.onnx"]["bytes"] > 400 * 2**20  # the ViT-L/14 text tower's weights, not a toy's
    teacher = json.loads((out / TEACHER_EXPORT / "manifest.json").read_text())["files"]
    assert [e["file"] for e in teacher] == ["image_encoder_teacher.onnx"] and teacher[0]["bytes"] > 1 << 30
    card = (out / PUBLISH / "README.md").read_text()
    assert "a rehearsal of the real run" in card and "`ffhq-rehearsal`" in card


def test_a_rehearsals_heads_cannot_be_published_as_the_real_presets(rehearsal):
    from celeblook.errors import WeightsError
    from celeblook.hub.heads import collect, publish

    out, _, _ = rehearsal
    with pytest.raises(WeightsError, match="holds heads of preset 'ffhq-rehearsal', not 'ffhq'"):
        collect(get_preset("ffhq"), out)
    with pytest.raises(InputError, match="is a rehearsal"):
        publish("owner/name", get_preset("ffhq-rehearsal"), out)


def linked_copy(out: Path, dest: Path) -> Path:
    """OUT as hard links (the rehearsal's gigabytes are not copied); break a file by replacing its link, never by
    writing into it, so OUT stays intact."""
    shutil.copytree(out, dest, copy_function=os.link)
    return dest


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])


# a file of each kind of artefact, and the check that names it (one run of the checker: it hashes gigabytes)
BROKEN = {
    "mapper.safetensors": "mapper.safetensors",
    "student_efficientformer_l1.json": "student_efficientformer_l1.safetensors",
    "eval.json": "eval.json",
    "onnx/synthesis_512.onnx": "synthesis_512.onnx",
    f"{TEACHER_EXPORT}/image_encoder_teacher.onnx": "image_encoder_teacher.onnx",
    f"{PUBLISH}/README.md": f"{PUBLISH}/README.md",
    f"{SPACE}/site.json": f"{SPACE}/site.json",
    f"{SPACE}-models/text_encoder_int8.onnx": f"{SPACE}-models/",
}


def test_the_checker_names_every_truncated_artefact(rehearsal, tmp_path):
    out, _, _ = rehearsal
    copy = linked_copy(out, tmp_path / "out")
    for name in BROKEN:
        truncate(copy / name)
    failed: dict[str, list[str]] = {}
    for check in check_artefacts(copy):
        if check.problem:
            failed.setdefault(check.artefact, []).append(check.problem)
    assert set(BROKEN.values()) <= set(failed), failed
    assert failed["mapper.safetensors"][0].startswith("sha256 ") and "bytes" in failed["synthesis_512.onnx"][0]
    assert all(c.problem is None for c in check_artefacts(out))  # the links were replaced, OUT is whole


def test_the_checker_stops_at_an_unreadable_manifest(rehearsal, tmp_path):
    out, _, _ = rehearsal
    copy = linked_copy(out, tmp_path / "out")
    truncate(copy / "onnx" / "manifest.json")
    failed = [c for c in check_artefacts(copy) if c.problem]
    assert failed[0].artefact == "onnx/manifest.json" and "JSONDecodeError" in failed[0].problem


def test_a_failed_check_ends_the_command_with_one_line(rehearsal, tmp_path):
    """A rerun skips the stages done (their products are newer than the heads), builds the Space again and checks."""
    out, home, _ = rehearsal
    copy = linked_copy(out, tmp_path / "out")
    summary = json.loads((copy / "eval.json").read_text())
    del summary["encoder"]
    (copy / "eval.json").unlink()
    (copy / "eval.json").write_text(json.dumps(summary))
    done = rehearse(copy, home, timeout=900)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "done in an earlier run, skipped" in done.stdout
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the progress bars
    assert last.startswith("error: rehearsal failed: 1 of ") and "eval.json" in last and "lacks encoder" in last, last


def test_the_rehearsal_keeps_the_real_runs_settings_and_shrinks_only_the_counts():
    from celeblook.cli import build_parser
    from celeblook.cli.train import all_config

    preset = get_preset("ffhq-rehearsal")
    real = all_config(build_parser().parse_args(["train", "all", "--preset", "ffhq", "--rehearse", "--out", "unused"]))
    assert real.mapper.preset == preset.name  # the jobs build the rehearsal's models
    small = smallest(real)
    assert (small.mapper.steps, small.strength.steps, small.encoder.steps, small.strength.eval_pairs) == (2, 2, 2, 2)
    assert small.mapper.consistency_every == real.mapper.consistency_every > 0 and small.mapper.image_size == 256
    assert (small.strength.target, small.strength.c_max, small.strength.size) == (0.7, real.strength.c_max, 256)
    assert small.evaluation.n == 1 and small.evaluation.size == real.evaluation.size
    assert (small.refiner.steps, small.refiner.calibration_faces, small.refiner.eval_n) == (2, 2, 1)
    assert (small.refiner.size, small.refiner.input_size) == (real.refiner.size, real.refiner.input_size) == (256, 128)
    assert preset.generator == get_preset("ffhq").generator and preset.clip_model == "ViT-L-14" and not preset.trained
    assert get_preset("ffhq").trained and "REHEARSAL" in preset.label
