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
