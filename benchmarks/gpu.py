"""Speed on a CUDA GPU: the stages of run.py in torch, student against teacher, in a table of its own.

    python -m benchmarks.gpu                  # real-size models (random weights), batch 1 and a batch of 16
    python -m benchmarks.gpu --quick          # tiny preset: for building and debugging this script

The product runs on CPUs and in browsers (run.py, web.py); this table is for a lent GPU, where the heads are
trained and where a server deployment would run. Each stage is timed with CUDA events (median of ``--runs``
after warm-up) in three forms: fp32 (TF32 off, so it is the fp32 the CPU computes), fp16 autocast (what the
browser's shader-f16 path computes) and fp16 autocast replayed from a CUDA graph (a batch-1 call of
MobileStyleGAN is hundreds of small kernels: launch overhead, which a graph removes). The ratio column
compares with the teacher stage in the same form. fp16's max abs difference from fp32 is printed per output.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.common import machine, print_table, seeded_models
from benchmarks.stylegan2_teacher import StyleGAN2Generator
from celeblook.export.synthesis_graph import ExportedSynthesis
from celeblook.text.tokenizer import eot_length

FORMS = ("fp32", "fp16", "fp16 + CUDA graph")


def cuda_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    """Per-call device time in ms, from CUDA events, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def in_form(fn: Callable[[], torch.Tensor], form: str) -> Callable[[], torch.Tensor]:
    """fn as run in one of FORMS. The graph is captured once with the autocast cache off (a cached cast made
    during capture would be freed after it) and replayed; its output tensor is reused by every replay."""
    if form == "fp32":
        return fn

    def half() -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.float16, cache_enabled=False):
            return fn()

    if form == "fp16":
        return half
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up on a side stream, as capture requires
        for _ in range(2):
            half()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = half()

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    return replay


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny preset, 256 px teacher")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16, help="the throughput batch (default 16)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results_gpu.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("benchmarks.gpu needs a CUDA GPU; on a CPU run benchmarks/run.py", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")

    m = seeded_models("tiny" if args.quick else "ffhq")
    g, student, clip, mapper, strength = (m[k].to(dev) for k in ("generator", "student", "clip", "mapper", "strength"))
    teacher_g = StyleGAN2Generator(size=256 if args.quick else 1024).to(dev)
    big = g.config.sizes[-1]
    exported = ExportedSynthesis(g.synthesis, big).to(dev).eval()
    t_size = 256 if args.quick else 1024

    def inputs(n: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(n)
        z = torch.randn(n, 512, generator=gen).to(dev)
        return {"z": z, "wplus": g.z_to_wplus(z, 0.7), "pixels": torch.randn(n, 3, 224, 224, generator=gen).to(dev),
                "delta": (torch.randn(n, 23, 512, generator=gen) * 0.5).to(dev)}

    tokens, _ = clip.tokenize(["a photo of a smiling woman with red hair"])
    rows, results, diffs = [], [], {}
    with torch.inference_mode():
        for n in (1, args.batch):
            x = inputs(n)
            emb = student(x["pixels"])
            text_tokens = tokens.to(dev).expand(n, -1)
            stages = {
                f"teacher G StyleGAN2-{t_size}": lambda: teacher_g(x["z"]),
                f"teacher E_I {m['preset'].clip_model}": lambda: clip.visual(x["pixels"]),
                "teacher inversion": lambda: (mapper(clip.visual(x["pixels"])), teacher_g(x["z"])),
                f"G {big}": lambda: g(x["wplus"], size=big),
                f"G {big} (export graph form)": lambda: exported(x["wplus"]),
                **{f"G {s} exit": (lambda s=s: g(x["wplus"], size=s)) for s in g.config.sizes[-3:-1][::-1]},
                "student E_I": lambda: student(x["pixels"]),
                f"inversion (E_I + f + G{big})": lambda: g(mapper(student(x["pixels"])), size=big),
                f"learned-C edit (C + G{big})": lambda: g(x["wplus"] + strength(x["wplus"], emb, x["delta"])[:, None, None]
                                                          * x["delta"], size=big),
                f"text encoder ({eot_length(tokens)} tokens)": lambda: clip.text(text_tokens),
            }
            teacher_of = {f"G {big}": f"teacher G StyleGAN2-{t_size}", f"inversion (E_I + f + G{big})": "teacher inversion",
                          "student E_I": f"teacher E_I {m['preset'].clip_model}"}
            teacher_of.update({k: teacher_of[f"G {big}"] for k in stages if k.startswith("G ")})
            for stage, fn in stages.items():
                ms = {}
                for form in FORMS:
                    if form.endswith("graph") and stage.startswith("text"):
                        continue  # the text tower reads the token length on the host: not capturable
                    ms[form] = statistics.median(cuda_ms(in_form(fn, form), args.runs))
                if n == 1 and stage.startswith(("G ", "teacher G", "student", "text")):
                    out32, out16 = fn(), in_form(fn, "fp16")()
                    diffs[stage] = float((out32.float() - out16.float()).abs().max())
                results.append({"stage": stage, "batch": n, "median_ms": ms, "teacher": teacher_of.get(stage)})
                print(f"  batch {n:3d} {stage:38s} " + "  ".join(f"{f} {v:8.2f} ms" for f, v in ms.items()), flush=True)

    by_key = {(r["stage"], r["batch"]): r["median_ms"] for r in results}
    for r in results:
        ref = by_key.get((r["teacher"], r["batch"]))
        cells = []
        for form in FORMS:
            ms = r["median_ms"].get(form)
            ratio = f" ({ref[form] / ms:.1f}x)" if ms and ref and form in ref else ""
            cells.append(f"{ms:.2f}{ratio}" if ms else "-")
        r["images_per_s"] = {f: r["batch"] * 1e3 / v for f, v in r["median_ms"].items()}
        rows.append([r["stage"], r["batch"], *cells, f"{r['images_per_s']['fp16']:.0f}"])
    name = torch.cuda.get_device_name()
    print(f"\n{name}, torch {torch.__version__}, CUDA {torch.version.cuda}; host {machine()}; medians of {args.runs} runs "
          f"(CUDA events); ratio: x faster than the teacher's stage in the same form")
    print_table(["stage", "batch", *(f"{f} ms" for f in FORMS), "images/s (fp16)"], rows)
    print("\nmax |fp16 - fp32| of each output, batch 1: " + ", ".join(f"{k} {v:.2g}" for k, v in diffs.items()))
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"peak GPU memory allocated: {peak:.1f} GiB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "quick": args.quick,
                                     "runs": args.runs, "rows": results, "fp16_max_abs_diff": diffs, "peak_gib": peak}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
