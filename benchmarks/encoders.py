"""Image encoder speed on CPU: EfficientFormer students vs the ViT-L/14 teacher image tower, batch 1.

The ffhq preset's student (efficientformer_l1) is marked in the table; the other variants are there to
compare (StudentConfig takes any of them).

fp32, torch eager under inference_mode, random weights, 224 px CLIP input. Each model is the module the
product runs: student = timm backbone + LayerNorm + Linear to 768 + L2; teacher = open_clip ViT-L-14
``visual`` + L2. Median of ``--runs`` timed calls after 2 warm-up calls. On a shared machine the 1-minute
load average is printed with each row: rows timed under other load are noisy.

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.encoders [--threads 2] [--runs 9]
"""

from __future__ import annotations

import argparse
import os

import torch

from benchmarks.common import machine, median_seconds, print_table
from celeblook.models.clip import ClipSpec, build_clip
from celeblook.models.student import StudentConfig, StudentEncoder
from celeblook.presets import get_preset

STUDENTS = ("efficientformer_l1", "efficientformer_l3", "efficientformer_l7", "efficientformerv2_l")
TEACHER = ClipSpec.resolve("ViT-L-14", "laion2b_s32b_b82k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    models = {name: StudentEncoder(StudentConfig(name, mean=TEACHER.mean, std=TEACHER.std)) for name in STUDENTS}
    models["ViT-L-14 image tower"] = build_clip(TEACHER).visual
    timings = {}
    with torch.inference_mode():
        for label, model in models.items():
            model.eval()
            timings[label] = median_seconds(lambda: model(x), runs=args.runs) + (os.getloadavg()[0],)
            print(f"timed {label}: {timings[label][0] * 1e3:.1f} ms", flush=True)

    teacher = timings["ViT-L-14 image tower"][0]
    print(f"\n{machine()}; batch 1, fp32, eager, median of {args.runs} after 2 warm-up\n")
    rows = []
    for label, (median, fastest, load) in timings.items():
        params = sum(p.numel() for p in models[label].parameters()) / 1e6
        name = f"{label} (ffhq student)" if label == get_preset("ffhq").student else label
        rows.append([name, f"{params:.2f}", f"{median * 1e3:.1f}", f"{fastest * 1e3:.1f}",
                     f"{median / teacher:.3f}", f"{teacher / median:.1f}x", f"{load:.2f}"])
    print_table(["model", "params (M)", "median ms", "min ms", "time / ViT-L/14", "speed-up", "load avg"], rows)


if __name__ == "__main__":
    main()
