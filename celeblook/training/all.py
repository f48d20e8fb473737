"""``python -m celeblook train all``: mapper -> encoder -> strength -> refiner -> eval -> export, stage by stage.

    OUT/train_all.json                       per stage: done, seconds, its figures (what a re-run reads)
    OUT/runs/{mapper,strength,encoder,refiner}/  each job's checkpoint, metrics.jsonl and metrics.json
    OUT/mapper.safetensors, strength.safetensors, student_<variant>.safetensors, refiner.safetensors (+ .json
                                             sidecars)
    OUT/eval.json                            the held-out figures of all four, with the bars they must clear, and
                                             under "evaluation" ``python -m celeblook eval`` of the heads in OUT
    OUT/onnx/                                the ONNX export a runtime install serves: generator, encoders and
                                             the heads of OUT (+ manifest.json)

The strength head learns on the mapper of this run and through its student: the app serves the heads of OUT
with that student as E_I, which measures the similarity the head's C aims at (trained through the teacher's
tower instead, the learned C missed the target by more than a fixed C did, measured through the student). The
refiner likewise starts from this run's mapper reading this run's student: the inversion it refines.

A stage recorded as done is skipped unless a head it was made from is newer than its product (strength and
refiner: the mapper and the student; eval and export: every head in OUT), so a head retrained or replaced since
is used again; a stage made from older heads starts again from scratch, an interrupted one resumes from its
checkpoint (each job resumes exactly; eval and export start again). Step counts and sizes default to the preset's
(each job's table in its preset file, the eval stage's ``[eval]``), so a bare ``--preset tiny`` finishes in minutes
on a CPU.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..evaluate import EvalConfig, evaluate, table_lines
from ..files import atomic_write_bytes
from ..models.student import student_path
from ..presets import Preset
from ..remedy import command
from .common import overall_progress
from .encoder import EncoderTrainConfig, encoder_line
from .mapper import MapperTrainConfig, mapper_line
from .refiner import RefinerTrainConfig, refiner_line
from .strength import StrengthTrainConfig, strength_line

Log = Callable[[str], None]


def head_files(preset: Preset, folder: Path) -> tuple[Path, Path, Path]:
    """The mapper, strength head and student files of a ``train all`` folder."""
    folder = Path(folder)
    return folder / "mapper.safetensors", folder / "strength.safetensors", folder / student_path(preset.student).name


STAGES = ("mapper", "encoder", "strength", "refiner", "eval", "export")
RECORD = "train_all.json"
MAPPER_BAR = 0.6  # held-out W+ MSE at most this share of always answering the mean latent
BRACKETED_BAR = 0.8  # share of held-out pairs the oracle must bracket for the strength comparison to count
REFINER_BAR = 0.5  # held-out pixel MSE after R's iterations at most this share of the mapper's (issue 23)
REFINER_OPTIMISED_BAR = 1.5  # ... and at most this multiple of the refinement by optimisation's


@dataclass(frozen=True)
class AllConfig:
    mapper: MapperTrainConfig
    strength: StrengthTrainConfig
    encoder: EncoderTrainConfig
    refiner: RefinerTrainConfig
    evaluation: EvalConfig  # the eval stage's python -m celeblook eval
    real_dir: Path | None = None
    init_imagenet: Path | None = None


def train_all(preset: Preset, out: Path, config: AllConfig, log: Log = print, show_progress: bool = True) -> dict:
    """Runs the stages not yet done (see the module docstring); returns OUT/eval.json's figures."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = _read(out / RECORD) or {"preset": preset.name, "stages": {}}
    if record.get("preset") != preset.name:
        raise InputError(f"{out} holds a `train all` run of preset {record.get('preset')!r}; choose another --out")
    steps = {"mapper": config.mapper.steps, "encoder": config.encoder.steps, "strength": config.strength.steps,
             "refiner": config.refiner.steps}
    done_steps = sum(n for stage, n in steps.items() if _done(stage, record, preset, out))
    runners = {"mapper": _mapper, "encoder": _encoder, "strength": _strength, "refiner": _refiner, "eval": _eval,
               "export": _export}
    started = time.perf_counter()
    with overall_progress(sum(steps.values()), done_steps, f"train all ({preset.name})", show_progress):
        for i, stage in enumerate(STAGES, 1):
            if _done(stage, record, preset, out):
                log(f"[train all {i}/{len(STAGES)}] {stage}: done in an earlier run, skipped")
                continue
            again = " again: a head it is made from changed since" if record["stages"].get(stage, {}).get("done") else ""
            log(f"[train all {i}/{len(STAGES)}] {stage}{again}"
                + (f": {steps[stage]:,} steps" if stage in steps else ""))
            start = time.perf_counter()
            figures = runners[stage](preset, out, config, log, show_progress)
            record["stages"][stage] = {"done": True, "seconds": round(time.perf_counter() - start, 1), "figures": figures}
            atomic_write_bytes(out / RECORD, json.dumps(record, indent=1).encode())
            log(f"[train all {i}/{len(STAGES)}] {stage} done in {_minutes(time.perf_counter() - start)}; "
                f"{_minutes(time.perf_counter() - started)} so far")
    summary = _read(out / "eval.json")
    for line in figure_lines(summary):
        log(line)
    if not preset.rehearsal:  # a rehearsal's heads are seeded random weights: weights publish refuses them
        publish = command("weights", "publish", "--repo", "OWNER/NAME", "--preset", preset.name, "--from", out)
        log(f"heads in {out}; share them with `{publish}`")
    return summary


def made_from(stage: str, preset: Preset, out: Path) -> tuple[Path | None, tuple[Path, ...]]:
    """(the file a stage makes, the heads it is made from); (None, ()) for the stages that read no head."""
    mapper, strength, student = head_files(preset, out)
    refiner = out / "refiner.safetensors"
    return {
        "strength": (strength, (mapper, student)),
        "refiner": (refiner, (mapper, student)),
        "eval": (out / "eval.json", (mapper, strength, student, refiner)),
        "export": (out / "onnx" / "manifest.json", (mapper, strength, student, refiner)),
    }.get(stage, (None, ()))


def older_than_its_heads(product: Path, heads: tuple[Path, ...]) -> bool:
    """``product`` missing, or not newer than one of ``heads``: it was made from heads since retrained or replaced."""
    return not product.is_file() or any(product.stat().st_mtime_ns <= head.stat().st_mtime_ns
                                        for head in heads if head.exists())


def _done(stage: str, record: dict, preset: Preset, out: Path) -> bool:
    """Recorded as done, and its product newer than every head it is made from (else it would be the strength
    head, the numbers or the export of heads since retrained or replaced: an OUT of the earlier order mapper ->
    strength -> encoder has a strength head older than its student, which trains it again)."""
    if not record["stages"].get(stage, {}).get("done"):
        return False
    product, heads = made_from(stage, preset, out)
    return product is None or not older_than_its_heads(product, heads)


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _read(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def _install(run: Path, out: Path, stem: str) -> None:
    """A job's product (``stem``.safetensors + its sidecar) into OUT, by link where possible."""
    from ..hub.weights import place

    for suffix in (".safetensors", ".json"):
        place(run / f"{stem}{suffix}", out / f"{stem}{suffix}")


def _mapper(preset: Preset, out: Path, config: AllConfig, log: Log, show_progress: bool) -> dict:
    from .mapper import CHECKPOINT, train_mapper

    run = out / "runs" / "mapper"
    metrics = train_mapper(config.mapper, run, resume=(run / CHECKPOINT).exists(), log=log)
    _install(run, out, "mapper")
    return {key: metrics[key] for key in ("wplus_mse_initial", "wplus_mse_mean_latent", "wplus_mse_final")}


def _strength(preset: Preset, out: Path, config: AllConfig, log: Log, show_progress: bool) -> dict:
    from .strength import CHECKPOINT_NAME, strength_job

    run, mapper, student, resume = _head_run("strength", CHECKPOINT_NAME, preset, out, log)
    # on the mapper of this run (its text directions are the ones the head will be asked about), through the
    # student of this run (the E_I that the app serves with these heads measures the similarity C aims at)
    metrics = strength_job(preset, run, config.strength, mapper, resume, show_progress, log, student=student)
    _install(run, out, "strength")
    return metrics


def _refiner(preset: Preset, out: Path, config: AllConfig, log: Log, show_progress: bool) -> dict:
    from .refiner import CHECKPOINT_NAME, refiner_job

    run, mapper, student, resume = _head_run("refiner", CHECKPOINT_NAME, preset, out, log)
    # it refines what this run's mapper answers for what this run's student sees: the inversion the app serves
    metrics = refiner_job(preset, run, config.refiner, mapper, resume, show_progress, log, student=student,
                          real_dir=config.real_dir)
    _install(run, out, "refiner")
    return metrics


def _head_run(stage: str, checkpoint_name: str, preset: Preset, out: Path, log: Log) -> tuple[Path, Path, Path, bool]:
    """(run folder, mapper, student, resume) of a head trained on this run's mapper and student: a checkpoint made
    from older ones is thrown away (the head starts again)."""
    run = out / "runs" / stage
    checkpoint = run / checkpoint_name
    mapper, student = made_from(stage, preset, out)[1]
    if checkpoint.exists() and older_than_its_heads(checkpoint, (mapper, student)):
        head = {"strength": "strength head"}.get(stage, stage)
        log(f"{checkpoint} was trained on an older mapper or student: the {head} starts again")
        shutil.rmtree(run)
    return run, mapper, student, checkpoint.exists()


def _encoder(preset: Preset, out: Path, config: AllConfig, log: Log, show_progress: bool) -> dict:
    from ..files import weights_dir
    from ..hub.weights import find_role, place
    from .encoder import CHECKPOINT_NAME, encoder_job

    run = out / "runs" / "encoder"
    init = config.init_imagenet
    if init is None and preset.trained:
        candidate = weights_dir() / find_role(preset.name, "student-init").name
        init = candidate if candidate.is_file() else None
        log(f"student backbone starts from {init}" if init else f"no {candidate.name}: the student starts from random weights")
    metrics = encoder_job(preset, run, config.encoder, config.real_dir, init, (run / CHECKPOINT_NAME).exists(), show_progress)
    stem = student_path(preset.student).stem
    _install(run, out, stem)
    if preset.trained and out.resolve() == (weights_dir() / preset.name).resolve():
        for suffix in (".safetensors", ".json"):  # where the pipeline reads the student
            place(out / f"{stem}{suffix}", student_path(preset.student).with_suffix(suffix))
    return metrics


def evaluation(figures: dict) -> dict:
    """OUT/eval.json: each head's held-out figures, with the bars a run must clear and whether it does."""
    mapper, strength, encoder, refiner = (figures.get(k, {}) for k in ("mapper", "strength", "encoder", "refiner"))
    result = {}
    if mapper:
        ratio = mapper["wplus_mse_final"] / mapper["wplus_mse_mean_latent"]
        result["mapper"] = {**mapper, "ratio_to_mean_latent": ratio, "bar": MAPPER_BAR, "passes": ratio <= MAPPER_BAR}
    if strength:
        learned, fixed = strength["abs_err_learned_bracketed"], strength["abs_err_fixed_bracketed"]
        result["strength"] = {**strength, "bar_bracketed_share": BRACKETED_BAR,
                              "passes": strength["bracketed_share"] >= BRACKETED_BAR and learned < fixed}
    if encoder:
        result["encoder"] = dict(encoder)
    if refiner:
        ratio = refiner["pixel_mse_refiner"] / refiner["pixel_mse_mapper"]
        to_optimised = refiner["pixel_mse_refiner"] / refiner["pixel_mse_optimised"]
        result["refiner"] = {**refiner, "ratio_to_mapper": ratio, "ratio_to_optimised": to_optimised,
                             "bar": REFINER_BAR, "bar_to_optimised": REFINER_OPTIMISED_BAR,
                             "passes": ratio <= REFINER_BAR and to_optimised <= REFINER_OPTIMISED_BAR}
    return result


def figure_lines(summary: dict) -> list[str]:
    """The figures a `train all` prints, each with whether it clears its bar."""
    lines = []
    mark = {True: "ok", False: "BELOW THE BAR"}
    if "mapper" in summary:
        m = summary["mapper"]
        lines.append(f"mapper: {mapper_line(m)} (bar {m['bar']}: {mark[m['passes']]})")
    if "strength" in summary:
        s = summary["strength"]
        lines.append(f"strength: {strength_line(s)} (bar: the oracle brackets >= {s['bar_bracketed_share']:.0%} and learned "
                     f"beats fixed: {mark[s['passes']]})")
    if "encoder" in summary:
        lines.append(f"encoder: {encoder_line(summary['encoder'])}")
    if "refiner" in summary:
        r = summary["refiner"]
        lines.append(f"refiner: {refiner_line(r)} (bar: <= {r['bar']} x the mapper's and <= {r['bar_to_optimised']} x "
                     f"the optimisation's: {mark[r['passes']]})")
    if "evaluation" in summary:
        lines += [f"evaluation of these heads through the pipeline ({command('eval')}):",
                  *table_lines(summary["evaluation"])]
    return lines


def _eval(preset: Preset, out: Path, config: AllConfig, log: Log, show_progress: bool) -> dict:
    stages = _read(out / RECORD).get("stages", {})
    summary = {"preset": preset.label, **evaluation({k: v.get("figures", {}) for k, v in stages.items()})}
    plan = config.evaluation
    log(f"evaluating the heads in {out}: {plan.n} held-out faces inverted (and refined {plan.refine_steps} steps), "
        f"each edited with {plan.edit_prompts} held-out prompts; C on {plan.strength_pairs} held-out pairs")
    summary["evaluation"] = evaluate(preset, plan, heads=out)
    atomic_write_bytes(out / "eval.json", json.dumps(summary, indent=2, sort_keys=True).encode())
    return {k: v["passes"] for k, v in summary.items() if isinstance(v, dict) and "passes" in v}


def _export(preset: Preset, out: Path, config: AllConfig, log: Log, show_progress: bool) -> dict:
    from ..export.preset import export_preset

    # everything a runtime install serves (generator, text and photo encoders, the heads of OUT): `weights publish`
    # uploads it, and a torch-free app can run from the published repository alone
    manifest = export_preset(preset, out / "onnx", heads=out, progress=log)
    return {"files": len(_read(manifest).get("files", []))}
