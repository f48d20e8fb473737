"""``python -m celeblook train all --preset ffhq --rehearse --out OUT``: the one expensive run, rehearsed on a CPU.

The preset's models at their real size with seeded random weights (``presets.rehearsal_of``: nothing is
downloaded or read), every stage of ``train all`` (mapper -> encoder -> strength -> refiner -> eval -> export) with the
fewest steps, faces and pairs that run all of its code, then ``web build --space`` from OUT's export (as
notebooks/publish_heads.ipynb builds it: the models fetched from the heads repository) and the model card
``weights publish`` would upload; then every artefact is checked as a real run must leave it
(celeblook.training.artefacts). A failed check ends the run with one line; so a run a person pays a GPU for cannot
fail on plumbing.

The export is the real run's (its parity measured per graph as it is written: the ViT-L/14 text tower and its int8
variant, the student, every generator exit), and the teacher's ViT-L/14 image tower is exported beside it, so every
real-size graph's parity is measured here: tests/test_export.py's CELEBLOOK_SLOW tests need not run in CI.

    OUT/                     what ``train all`` writes (see celeblook.training.all), of the rehearsal preset
    OUT/onnx-teacher/        ``export onnx --models image_encoder_teacher``
    OUT/publish/             README.md (the model card) and celeblook-heads.json (the index), as published
    OUT/space/               ``web build --space OUT/space --exports OUT/onnx --models-url MODELS_URL`` (or the
                             folder given): the page, its site.json and the models' manifest
    OUT/space-models/        the ONNX files for the heads repository's onnx/ folder, which the page fetches
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..errors import CelebError, InputError
from ..export.onnx import MANIFEST
from ..export.preset import TEACHER, export_preset
from ..files import atomic_write_bytes
from ..presets import REHEARSAL_SUFFIX, Preset
from ..remedy import command
from .all import RECORD, STAGES, AllConfig, train_all
from .artefacts import MODELS_URL, PLACEHOLDER_REPO, PUBLISH, SPACE, TEACHER_EXPORT, Check, check_artefacts, check_table

Log = Callable[[str], None]
BANNER = ("REHEARSAL of `train all --preset {base}`: real-size models with SEEDED RANDOM WEIGHTS (nothing downloaded), "
          "a few steps of every stage; the heads it makes are not trained and cannot be published")


def smallest(config: AllConfig) -> AllConfig:
    """``config`` (what the real run would use) with the fewest steps, samples and pairs that still run every code
    path of its stage; sizes, exits, targets and every other setting stay the real run's."""
    return replace(
        config,
        # step 0 takes the consistency term (G and E_I backward) when the real run has one
        mapper=replace(config.mapper, steps=2, batch=2, warmup=1, centre_samples=2, heldout=2, eval_every=1,
                       ckpt_every=1),
        strength=replace(config.strength, steps=2, batch=2, calibration_pairs=1, checkpoint_every=1, eval_pairs=2),
        encoder=replace(config.encoder, steps=2, batch=2, n_eval=2, checkpoint_every=1),
        refiner=replace(config.refiner, steps=2, batch=2, calibration_faces=2, checkpoint_every=1, eval_n=1,
                        optimise_steps=1),
        evaluation=replace(config.evaluation, n=1, refine_steps=1, edit_prompts=1, strength_pairs=2),
    )


def rehearse(preset: Preset, out: Path, config: AllConfig, space: Path | None = None, log: Log = print) -> list[Check]:
    """Runs the rehearsal into ``out`` (the Space into ``space``, default OUT/space) and checks what it made; returns
    the checks, or raises a one-line CelebError naming the first that failed."""
    if not preset.rehearsal:
        raise InputError(f"{preset.name} is not a rehearsal preset")
    out = Path(out)
    space = Path(space) if space is not None else out / SPACE
    banner = BANNER.format(base=preset.name.removesuffix(REHEARSAL_SUFFIX))
    log(banner)
    started = time.perf_counter()
    train_all(preset, out, smallest(config), log=log)
    start = time.perf_counter()
    # a real run exports the student as the photo encoder; the teacher's tower (`export onnx --teacher`, or where no
    # student is trained) is exported here too, so that every real-size graph has its parity measured. It is made
    # from no head, so one written whole (its manifest comes last) stands, as train all's stages done do.
    if (out / TEACHER_EXPORT / MANIFEST).is_file():
        log(f"[rehearsal] {out / TEACHER_EXPORT}: exported in an earlier run, skipped")
    else:
        log(f"[rehearsal] {command('export', 'onnx', '--preset', preset.name, '--models', TEACHER, '--out', out / TEACHER_EXPORT)}")
        export_preset(preset, out / TEACHER_EXPORT, models=[TEACHER], progress=log)
    seconds = {"teacher export": time.perf_counter() - start}
    seconds["web build"] = build_space(out / "onnx", space, log)
    start = time.perf_counter()
    write_publication(preset, out)
    checks = check_artefacts(out, space)
    seconds["checks"] = time.perf_counter() - start
    stages = json.loads((out / RECORD).read_text())["stages"]
    timing = ", ".join([*(f"{s} {stages[s]['seconds']:.0f} s" for s in STAGES if s in stages),
                        *(f"{k} {v:.0f} s" for k, v in seconds.items())])
    for line in check_table(checks):
        log(line)
    log(f"[rehearsal] {time.perf_counter() - started:.0f} s in all (stages as train_all.json records them: {timing})")
    failed = [c for c in checks if c.problem]
    if failed:
        raise CelebError(f"rehearsal failed: {len(failed)} of {len(checks)} checks; first: {failed[0].line()}")
    log(f"{banner}: all {len(checks)} checks passed")
    return checks


def build_space(exports: Path, space: Path, log: Log) -> float:
    """``web build --space SPACE --exports EXPORTS --models-url MODELS_URL``, as the notebook runs it (the web layer
    sits above training: a command, not an import); returns its seconds, or raises its error line."""
    start = time.perf_counter()
    args = ["web", "build", "--space", str(space), "--exports", str(exports), "--models-url", MODELS_URL]
    log(f"[rehearsal] {command(*args)}")
    done = subprocess.run([sys.executable, "-m", "celeblook", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    lines = done.stdout.strip().splitlines()
    for line in lines:
        log(f"  {line}")
    if done.returncode != 0:
        raise CelebError(f"rehearsal failed: web build --space exited {done.returncode}: "
                         f"{lines[-1] if lines else 'no output'}")
    return time.perf_counter() - start


def write_publication(preset: Preset, out: Path) -> Path:
    """OUT/publish/: the model card and the index ``weights publish`` would upload with OUT's files."""
    from ..hub.heads import CARD, INDEX, publication

    _files, index, card = publication(PLACEHOLDER_REPO, preset, out)
    folder = out / PUBLISH
    folder.mkdir(exist_ok=True)
    atomic_write_bytes(folder / INDEX, json.dumps(index, indent=1).encode())
    atomic_write_bytes(folder / CARD, card.encode())
    return folder
