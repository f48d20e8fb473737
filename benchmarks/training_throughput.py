"""Training throughput at REAL model sizes: samples/s of each training job (mapper, strength, encoder).

Models: the ffhq generator architecture with ``fill_reference`` weights, OpenCLIP ViT-L-14 with random
weights (speed does not depend on the weights) and the ffhq preset's
student (efficientformer_l1, random). Each job is the real training loop (celeblook.training.*) run for
``--steps`` steps on those models; step times are the gaps between the per-step timestamps the loops write
to metrics.jsonl, the first step dropped as warm-up. The mapper loop adds an image-space consistency term
every 4th step (G + E_I backward), so its mean exceeds its median: both are printed. Evaluation,
calibration and centre estimation are shrunk to a minimum here and are not part of a step.

The last columns estimate a full run: the CLI's default steps x the mean step time, scaled linearly from
the benchmark batch to the default batch where they differ (on a CPU, time is close to linear in batch).
On a GPU (``--device cuda``) each job runs at the CLI's default batch and mixed precision (``--amp``, bf16
as the CLI), so no scaling is needed.

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.training_throughput [--threads 2] [--steps 5] [--batch 2]
    python -m benchmarks.training_throughput --device cuda --threads 16 --steps 10
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
from celeblook.factory import create_generator
from celeblook.models.clip import create_clip
from celeblook.models.student import create_student

# ffhq's architectures, random weights: "trained=False" makes every factory build seeded random models
REAL_SIZES = dataclasses.replace(presets.PRESETS["ffhq"], name="ffhq-random", clip_tag=None, trained=False)
DEFAULTS = {job: (presets.JOBS[job].from_preset("ffhq").steps, presets.JOBS[job].from_preset("ffhq").batch)
            for job in ("mapper", "strength", "encoder")}  # the CLI's steps, batch (the ffhq preset's)


def step_times(run_dir: Path) -> list[float]:
    """Durations of steps 2..n: gaps between the per-step timestamps of the loop's metrics.jsonl (step 1,
    which has no stamp before it, is the warm-up)."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    stamps = [r["time"] for r in records if "loss" in r]
    return [b - a for a, b in zip(stamps, stamps[1:])]


def bench_mapper(steps: int, batch: int, out: Path, device: str, amp: str) -> list[float]:
    from celeblook.training.mapper import MapperTrainConfig, train_mapper

    presets.PRESETS[REAL_SIZES.name] = REAL_SIZES  # train_mapper builds its models from a preset name
    try:
        cfg = MapperTrainConfig.from_preset(REAL_SIZES, steps=steps, batch=batch, centre_samples=batch, heldout=batch,
                                            eval_every=10**9, ckpt_every=10**9, device=device, amp=amp)
        train_mapper(cfg, out, log=lambda message: None)
    finally:
        del presets.PRESETS[REAL_SIZES.name]
    return step_times(out)


def bench_strength(steps: int, batch: int, out: Path, generator, teacher, amp: str) -> list[float]:
    from celeblook.data import load_prompts
    from celeblook.models.mapper import Mapper
    from celeblook.models.strength import StrengthPredictor
    from celeblook.training.strength import StrengthTrainConfig, text_edit_bank, train_strength

    device = generator.w_avg.device
    mapper = Mapper().to(device).set_centres(torch.zeros(768), 0.05, generator.w_avg).eval().requires_grad_(False)
    bank = text_edit_bank(teacher, mapper, load_prompts()[:10])  # speed does not depend on the bank's size
    cfg = StrengthTrainConfig.from_preset(REAL_SIZES, steps=steps, batch=batch, calibration_pairs=0, checkpoint_every=10**9, amp=amp)
    predictor = StrengthPredictor(w_avg=generator.w_avg).to(device)
    train_strength(predictor, generator, teacher, bank, cfg, out, show_progress=False)
    return step_times(out)


def bench_encoder(steps: int, batch: int, out: Path, generator, teacher, amp: str) -> list[float]:
    from celeblook.training.encoder import EncoderTrainConfig, train_encoder

    student = create_student(REAL_SIZES).to(generator.w_avg.device)
    cfg = EncoderTrainConfig.from_preset(REAL_SIZES, steps=steps, batch=batch, n_eval=1, checkpoint_every=10**9, amp=amp)
    train_encoder(student, teacher.visual, generator, cfg, out, show_progress=False)
    return step_times(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="training steps per job (>= 2; the first is warm-up; "
                        "5 includes one of the mapper's consistency steps)")
    parser.add_argument("--batch", type=int, help="samples per step (default: 2 on CPU, the CLI's batch on CUDA)")
    parser.add_argument("--jobs", default="mapper,strength,encoder")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--amp", choices=["bf16", "fp16", "off"], default="bf16", help="mixed precision on CUDA")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    amp = args.amp if device.type == "cuda" else "off"
    generator = create_generator(REAL_SIZES).to(device)
    teacher = create_clip(REAL_SIZES).to(device)
    rows = []
    for job in args.jobs.split(","):
        steps, default_batch = DEFAULTS[job]
        batch = args.batch or (default_batch if device.type == "cuda" else 2)
        with tempfile.TemporaryDirectory() as tmp:
            if job == "mapper":
                times = bench_mapper(args.steps, batch, Path(tmp), args.device, amp)
            elif job == "strength":
                times = bench_strength(args.steps, batch, Path(tmp), generator, teacher, amp)
            else:
                times = bench_encoder(args.steps, batch, Path(tmp), generator, teacher, amp)
        median, mean = statistics.median(times), statistics.fmean(times)
        full_hours = steps * mean * default_batch / batch / 3600
        rows.append([job, batch, len(times), f"{median:.3f}", f"{mean:.3f}", f"{batch / mean:.1f}",
                     f"{steps} x {default_batch}", f"{full_hours:.2f}", f"{os.getloadavg()[0]:.2f}"])
        print(f"timed {job}: median {median:.3f} s/step", flush=True)
    where = f"{torch.cuda.get_device_name(device)}, {amp} autocast" if device.type == "cuda" else "fp32"
    print(f"\n{machine()}; {where}, eager; REAL sizes (ffhq generator, ViT-L-14, {REAL_SIZES.student}), random weights\n")
    print_table(["job", "batch", "timed steps", "median s/step", "mean s/step", "samples/s",
                 "full run (steps x batch)", "est. hours", "load avg"], rows)


if __name__ == "__main__":
    main()
