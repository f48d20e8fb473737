"""Timing helpers shared by the benchmarks: medians after warm-up, one table per run."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def timings_ms(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Wall time of each of ``runs`` calls of fn(), in ms, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def seeded_models(preset_name: str = "ffhq", clip: bool = True, clip_file=None, image_tower: bool = True) -> dict:
    """The preset's architectures with seeded random weights (latency and memory depend on shapes, not values):
    generator, student, CLIP (optional; ``clip_file``: read it from a checkpoint as ``create_clip`` would;
    ``image_tower=False``: text tower only, as when the student is E_I), mapper and strength head."""
    import torch

    from celeblook.models.clip import ClipSpec, build_clip
    from celeblook.models.image_encoder import seeded_init
    from celeblook.models.mapper import Mapper, MapperConfig
    from celeblook.models.mobilestylegan import Generator
    from celeblook.models.reference_layout import fill_reference
    from celeblook.models.strength import StrengthConfig, StrengthPredictor
    from celeblook.models.student import StudentConfig, StudentEncoder
    from celeblook.presets import get_preset

    preset = get_preset(preset_name)
    sd = fill_reference(preset.generator, 7)
    generator = Generator(preset.generator).load_reference(sd, w_avg=sd["style_mean"])
    del sd
    with seeded_init(0):
        student = StudentEncoder(StudentConfig.from_preset(preset)).eval().requires_grad_(False)
    models = {"preset": preset, "generator": generator, "student": student}
    if clip:
        spec = ClipSpec.resolve(preset.clip_model, preset.clip_tag)
        models["clip"] = build_clip(spec, clip_file, seed=0, image_tower=image_tower)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        models["mapper"] = Mapper(MapperConfig()).eval().requires_grad_(False).set_centres(torch.zeros(768), 1.0, generator.w_avg)
        models["strength"] = StrengthPredictor(StrengthConfig(), generator.w_avg).eval().requires_grad_(False)
    return models


def median_seconds(fn: Callable[[], object], runs: int = 7, warmup: int = 2) -> tuple[float, float]:
    """(median, min) wall time of fn() in seconds."""
    times = timings_ms(fn, runs, warmup)
    return statistics.median(times) / 1e3, min(times) / 1e3


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def print_table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [headers] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for i, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
