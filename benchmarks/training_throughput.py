"""Training throughput on CPU at REAL model sizes: samples/s of each training job (mapper, strength, encoder).

Models: the ffhq generator architecture with ``fill_reference`` weights, OpenCLIP ViT-L-14 with random
weights (speed does not depend on the weights) and the ffhq preset's
student (efficientformer_l1, random). Each job is the real training loop (celeblook.training.*) run for
``--steps`` steps on those models; step times are the gaps between the per-step timestamps the loops write
to metrics.jsonl, the first step dropped as warm-up. The mapper loop adds an image-space consistency term
every 4th step (G + E_I backward), so its mean exceeds its median: both are printed. Evaluation,
calibration and centre estimation are shrunk to a minimum here and are not part of a step.

The last columns estimate a full run on this CPU: the CLI's default steps x the mean step time scaled
linearly from the benchmark batch to the default batch (CPU time is close to linear in batch). GPU is not
measured here.

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.training_throughput [--threads 2] [--steps 5] [--batch 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
from pathlib import Path

import torch

from benchmarks.common import machine, print_table

from celeblook import presets
from celeblook.models import create_generator
from celeblook.models.clip import create_clip
from celeblook.models.student import create_student

# ffhq's architectures, random weights: "trained=False" makes every factory build seeded random models
REAL_SIZES = dataclasses.replace(presets.PRESETS["ffhq"], name="ffhq-random", clip_tag=None, trained=False)
DEFAULTS = {"mapper": (20_000, 32), "strength": (2_000, 8), "encoder": (20_000, 32)}  # the CLI's steps, batch


def step_times(run_dir: Path) -> list[float]:
    """Durations of steps 2..n: gaps between the per-step timestamps of the loop's metrics.jsonl (step 1,
    which has no stamp before it, is the warm-up)."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    stamps = [r["time"] for r in records if "loss" in r]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def bench_mapper(steps: int, batch: int, out: Path) -> list[float]:
    from celeblook.training.mapper import MapperTrainConfig, train_mapper

    presets.PRESETS[REAL_SIZES.name] = REAL_SIZES  # train_mapper builds its models from a preset name
    try:
        cfg = MapperTrainConfig(preset=REAL_SIZES.name, steps=steps, batch=batch, centre_samples=batch,
                                heldout=batch, eval_every=10**9, ckpt_every=10**9, device="cpu")
        train_mapper(cfg, out, log=lambda message: None)
    finally:
        del presets.PRESETS[REAL_SIZES.name]
    return step_times(out)


def bench_strength(steps: int, batch: int, out: Path, generator, teacher) -> list[float]:
    from celeblook.data import load_prompts
    from celeblook.models.mapper import Mapper
    from celeblook.models.strength import StrengthPredictor
    from celeblook.training.strength import StrengthTrainConfig, text_edit_bank, train_strength

    mapper = Mapper().set_centres(torch.zeros(768), 0.05, generator.w_avg).eval().requires_grad_(False)
    bank = text_edit_bank(teacher, mapper, load_prompts()[:10])  # speed does not depend on the bank's size
    cfg = StrengthTrainConfig(steps=steps, batch=batch, calibration_pairs=0, checkpoint_every=10**9)
    train_strength(StrengthPredictor(w_avg=generator.w_avg), generator, teacher, bank, cfg, out, show_progress=False)
    return step_times(out)


def bench_encoder(steps: int, batch: int, out: Path, generator, teacher) -> list[float]:
    from celeblook.training.encoder import EncoderTrainConfig, train_encoder

    student = create_student(REAL_SIZES)
    cfg = EncoderTrainConfig(steps=steps, batch=batch, n_eval=1, checkpoint_every=10**9)
    train_encoder(student, teacher.visual, generator, cfg, out, show_progress=False)
    return step_times(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="training steps per job (>= 2; the first is warm-up; "
                        "5 includes one of the mapper's consistency steps)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--jobs", default="mapper,strength,encoder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    jobs = args.jobs.split(",")
    generator = create_generator(REAL_SIZES)
    teacher = create_clip(REAL_SIZES)
    rows = []
    for job in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            if job == "mapper":
                times = bench_mapper(args.steps, args.batch, Path(tmp))
            elif job == "strength":
                times = bench_strength(args.steps, args.batch, Path(tmp), generator, teacher)
            else:
                times = bench_encoder(args.steps, args.batch, Path(tmp), generator, teacher)
        median, mean = statistics.median(times), statistics.fmean(times)
        steps, batch = DEFAULTS[job]
        full_hours = steps * mean * batch / args.batch / 3600
        rows.append([job, args.batch, len(times), f"{median:.2f}", f"{mean:.2f}", f"{args.batch / mean:.2f}",
                     f"{steps} x {batch}", f"{full_hours:.0f}", f"{os.getloadavg()[0]:.2f}"])
        print(f"timed {job}: median {median:.2f} s/step", flush=True)
    print(f"\n{machine()}; fp32, eager; REAL sizes (ffhq generator, ViT-L-14, {REAL_SIZES.student}), random weights\n")
    print_table(["job", "batch", "timed steps", "median s/step", "mean s/step", "samples/s",
                 "full run (steps x batch)", "est. CPU hours", "load avg"], rows)


if __name__ == "__main__":
    main()
