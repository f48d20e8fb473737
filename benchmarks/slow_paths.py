"""The slow paths at real size: what each feature costs on public weights alone (no trained heads).

Without a mapper every request optimises W+ through the generator's 256 px exit and CLIP's image tower
(the ViT-L/14 teacher: no trained student either), so the cost is steps x (G 256 + ViT-L/14, forward and
backward). This times a few optimisation steps of each path through the Pipeline, with the real-size
architectures and seeded random weights (speed depends on shapes, not values), and prints the time of the
default step counts.

    python -m benchmarks.slow_paths [--steps 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.common import machine, print_table, seeded_models
from celeblook.engine import Models
from celeblook.models.torch_engine import TorchEngine
from celeblook.pipeline import PhotoStart, Pipeline
from celeblook.pipeline.slow import EDIT_OPTIMIZE_STEPS, REFINE_STEPS, TEXT_OPTIMIZE_STEPS

OUT = Path(__file__).with_name("results_slow_paths.json")


def bare_pipeline(device: str) -> Pipeline:
    """The ffhq models as a user with public weights alone has them: G and CLIP, no mapper, strength or student."""
    models = seeded_models("ffhq")
    clip = models["clip"].to(device)
    missing = ("mapper weights missing (benchmark: public weights only)",)
    generator = models["generator"].to(device)
    engine = TorchEngine(generator, clip, clip.visual, None, None)
    return Pipeline(Models(models["preset"], engine, generator, clip, clip.visual, missing=missing))


def per_step(run, steps: int) -> float:
    """Seconds per optimisation step: a run of ``steps`` minus a run of 1 step (loading, final render and scoring
    cancel), divided by the difference."""
    run(1)  # warm-up
    start = time.perf_counter()
    run(1)
    one = time.perf_counter() - start
    start = time.perf_counter()
    run(steps)
    many = time.perf_counter() - start
    return (many - one) / (steps - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    pipe = bare_pipeline(args.device)
    face = pipe.face_of(torch.zeros(23, 512) + pipe.generator.w_avg.cpu(), size=256).faces[0]
    photo = PhotoStart(face.image, aligned=True)
    paths = {
        "invert (refinement)": (REFINE_STEPS, lambda n: pipe.invert(photo, refine_steps=n, size=256)),
        "text to face (CLIP-guided)": (TEXT_OPTIMIZE_STEPS, lambda n: pipe.text_to_face("a smiling woman", optimize_steps=n, size=256)),
        "edit, manual C (CLIP-guided)": (EDIT_OPTIMIZE_STEPS, lambda n: pipe.edit(face, "a face with glasses", strengths=[0.4],
                                                                                 size=256, optimize_steps=n)),
    }
    rows, results = [], {"machine": machine(), "device": args.device, "paths": {}}
    for name, (default_steps, run) in paths.items():
        seconds = per_step(run, args.steps)
        results["paths"][name] = {"s_per_step": seconds, "default_steps": default_steps, "default_s": seconds * default_steps}
        rows.append([name, seconds, default_steps, seconds * default_steps / 60])
    print(results["machine"])
    print_table(["slow path", "s / step", "default steps", "default run (min)"], rows)
    OUT.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
