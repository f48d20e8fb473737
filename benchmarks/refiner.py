"""The learned refiner R at real size in ONNX Runtime on this CPU (issue 23: one iteration, R + G at the render size,
<= 1.5x the plain inversion's G call), and inversion time for 0..k iterations. Seeded weights: latency depends on
shapes, not values. Native ORT, batch 1, CELEBLOOK_ORT_THREADS threads (default 2), medians of one run.

    python -m benchmarks.refiner [--runs 7] [--iterations 3]

An inversion here is what Pipeline.invert runs on the engine: photo encoder + mapper, k x (G at R's render size +
R), then the face rendered at the output size (1024 and 256 rows). The fp16 graph's size is the page's download.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, print_table
from celeblook.export.graphs import generator_graphs, image_encoder_graph, mapper_graph, refiner_graph
from celeblook.export.onnx import export_models
from celeblook.models.refiner import Refiner, RefinerConfig
from celeblook.runtime.ort import open_session, ort_threads


def seeded_refiner() -> Refiner:
    """The ffhq refiner's architecture (efficientformerv2_s0, 128 px in, 256 px renders) with seeded readouts."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        refiner = Refiner(RefinerConfig())
        with torch.no_grad():
            for layer in (refiner.features, refiner.out):
                layer.weight.normal_(0, 0.02)
    return refiner.eval().requires_grad_(False)


def round_robin_ms(calls: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median ms of each call, timed in turn ``runs`` times after one warm-up each: on a shared machine the load
    then falls on every row alike, so the ratios hold better than the absolute numbers."""
    for fn in calls.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    from benchmarks.common import seeded_models

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    m = seeded_models(clip=False)
    refiner = seeded_refiner()
    size = refiner.config.render_size
    graphs = [*generator_graphs(m["generator"], [1024, size]), image_encoder_graph(m["student"]), mapper_graph(m["mapper"]),
              refiner_graph(refiner)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        export_models(graphs, out, fp16=True, progress=print)
        bytes_fp32, bytes_fp16 = (out / "refiner.onnx").stat().st_size, (out / "refiner_fp16.onnx").stat().st_size
        sessions = {g.name: open_session(out / f"{g.name}.onnx") for g in graphs}
        rng = np.random.default_rng(0)
        photo = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        pixels = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)

        def run(name: str, **feeds: np.ndarray) -> np.ndarray:
            return sessions[name].run(None, feeds)[0]

        wplus = run("mapper", embedding=run("image_encoder", pixels=pixels))

        def iteration(w: np.ndarray) -> np.ndarray:
            return w + run("refiner", photo=photo, reconstruction=run(f"synthesis_{size}", wplus=w))

        def inversion(k: int, out_size: int) -> np.ndarray:
            w = run("mapper", embedding=run("image_encoder", pixels=pixels))
            for _ in range(k):
                w = iteration(w)
            return run(f"synthesis_{out_size}", wplus=w)

        calls = {"G 256": lambda: run(f"synthesis_{size}", wplus=wplus), "G 1024": lambda: run("synthesis_1024", wplus=wplus),
                 "R": lambda: run("refiner", photo=photo, reconstruction=photo), "R + G 256": lambda: iteration(wplus),
                 **{f"inversion {k} {s}": partial(inversion, k, s) for k in range(args.iterations + 1) for s in (1024, 256)}}
        timed = round_robin_ms(calls, args.runs)
        inversions = [[k, *(f"{timed[f'inversion {k} {s}']:.0f}" for s in (1024, 256))] for k in range(args.iterations + 1)]
    print(f"refiner R (efficientformerv2_s0, {refiner.config.input_size} px in, G at {size}), ONNX Runtime native, batch 1, "
          f"{ort_threads()} threads, median of {args.runs} round-robin; {machine()}")
    print_table(["graph", "median ms"], [[name, f"{ms:.0f}"] for name, ms in timed.items() if not name.startswith("inversion")])
    print(f"one iteration / plain inversion's G call: {timed['R + G 256'] / timed['G 1024']:.2f}x (G at 1024), "
          f"{timed['R + G 256'] / timed['G 256']:.2f}x (G at 256)")
    print_table(["iterations", "inversion ms (1024 out)", "inversion ms (256 out)"], inversions)
    print(f"refiner.onnx {bytes_fp32 / 2**20:.1f} MB, refiner_fp16.onnx {bytes_fp16 / 2**20:.1f} MB")


if __name__ == "__main__":
    main()
