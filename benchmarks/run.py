"""Speed of the CelebrityLook stages against the teacher pipeline, measured in one run, on CPU.

    python benchmarks/run.py                 # real-size models (random weights), >= 7 runs per stage
    python benchmarks/run.py --quick         # tiny preset, few runs: for building and debugging this script
    python benchmarks/run.py --experiments   # + generator variants (graph form, int8 1x1 convs, ORT levels, threads, channels-last)

Prints one table (stage, backend, median ms, GMACs, achieved GFLOP/s, ratio to the teacher) and writes JSON.
Weights are seeded random weights of the real architectures: latency depends on shapes, not on values.
The teacher is OpenCLIP ViT-L/14's image tower + a StyleGAN2-1024 config-f generator (stylegan2_teacher.py),
run in torch eager (fewer runs: it is slow). Medians of runs after warm-up; on a shared machine numbers are
noisy, so the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks.common import seeded_models, timings_ms  # noqa: E402
from benchmarks.stylegan2_teacher import StyleGAN2Generator  # noqa: E402
from celeblook.export.graphs import Graph, model_graphs  # noqa: E402
from celeblook.export.onnx import export_graph, export_models  # noqa: E402
from celeblook.media import encode_gif, to_uint8  # noqa: E402
from celeblook.models.mobilestylegan import Generator  # noqa: E402
from celeblook.runtime.ort import open_session, session_options  # noqa: E402
from celeblook.text.tokenizer import eot_length

TARGETS_MS = {"G 1024": 200, "G 256 exit": 80, "inversion": 300, "C-sweep GIF 16x512": 3000, "text encoder int8 (a typical prompt)": 60}


def gmacs(fn: Callable[[], object]) -> float:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        fn()
    return counter.get_total_flops() / 2e9


class Table:
    def __init__(self):
        self.rows: list[dict] = []

    def add(self, stage: str, backend: str, ms: list[float], macs: float | None = None, teacher: str | None = None) -> dict:
        row = {"stage": stage, "backend": backend, "median_ms": statistics.median(ms), "min_ms": min(ms), "runs": len(ms),
               "gmacs": macs, "gflops_per_s": (2 * macs / (statistics.median(ms) / 1e3)) if macs else None, "teacher": teacher}
        self.rows.append(row)
        print(f"  {stage:34s} {backend:12s} {row['median_ms']:9.1f} ms  (n={len(ms)})", flush=True)
        return row

    def finish(self) -> None:
        ref = {r["stage"]: r["median_ms"] for r in self.rows if r["backend"].startswith("teacher")}
        for row in self.rows:
            if row["teacher"] in ref:
                row["ratio_to_teacher"] = ref[row["teacher"]] / row["median_ms"]

    def print(self) -> None:
        print(f"\n{'stage':34s} {'backend':12s} {'median ms':>10s} {'GMACs':>7s} {'GFLOP/s':>8s} {'x faster than teacher':>22s}")
        for r in self.rows:
            macs = f"{r['gmacs']:.3f}" if r["gmacs"] else "-"
            flops = f"{r['gflops_per_s']:.1f}" if r["gflops_per_s"] else "-"
            ratio = f"{r['ratio_to_teacher']:.1f}x ({r['teacher']})" if r.get("ratio_to_teacher") else "-"
            print(f"{r['stage']:34s} {r['backend']:12s} {r['median_ms']:10.1f} {macs:>7s} {flops:>8s} {ratio:>22s}")


def build_models(quick: bool) -> dict:
    models = seeded_models("tiny" if quick else "ffhq")
    return {**models, "teacher_g": StyleGAN2Generator(size=256 if quick else 1024)}


def export_all(m: dict, directory: Path) -> dict[str, Path]:
    """Export (or reuse) the graphs this benchmark runs; returns name -> file."""
    graphs = model_graphs(m["generator"], m["student"], m["clip"], m["mapper"], m["strength"])
    if not (directory / "manifest.json").is_file():
        print(f"exporting ONNX graphs to {directory}", flush=True)
        export_models(graphs, directory, int8=("text_encoder",), progress=lambda s: print("  " + s, flush=True))
    manifest = json.loads((directory / "manifest.json").read_text())
    return {e["file"].removesuffix(".onnx"): directory / e["file"] for e in manifest["files"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny preset, 3 runs (teacher: 256 px StyleGAN2, tiny CLIP)")
    parser.add_argument("--runs", type=int, help="timed runs per stage (default 7; 3 with --quick)")
    parser.add_argument("--teacher-runs", type=int, help="timed runs of the slow teacher (default 3; 2 with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="ORT intra-op threads and torch threads (default 2)")
    parser.add_argument("--onnx-dir", type=Path, help="reuse / keep the exported graphs here")
    parser.add_argument("--experiments", action="store_true", help="also time generator variants in interleaved pairs")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    teacher_runs = args.teacher_runs or (2 if args.quick else 3)
    torch.set_num_threads(args.threads)

    m = build_models(args.quick)
    directory = args.onnx_dir or Path(tempfile.mkdtemp(prefix="celeblook_bench_"))
    files = export_all(m, directory)
    sess = {name: open_session(path, threads=args.threads) for name, path in files.items()}
    g, student, clip, mapper = m["generator"], m["student"], m["clip"], m["mapper"]
    rng = np.random.default_rng(0)
    wplus = g.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), 0.7)
    w_np = wplus.numpy()
    pixels = torch.from_numpy(rng.standard_normal((1, 3, 224, 224)).astype(np.float32))
    tokens, _ = clip.tokenize(["a photo of a smiling woman with red hair"])
    table = Table()
    load_before = os.getloadavg()
    print(f"timing ({runs} runs per stage, {teacher_runs} for the teacher; load average {load_before[0]:.2f})", flush=True)

    with torch.inference_mode():
        # teacher first, so every other row can be compared with it
        teacher_g = m["teacher_g"]
        z = torch.randn(1, 512)
        t_size = "1024" if not args.quick else "256"
        t_clip = f"teacher E_I {m['preset'].clip_model}"
        table.add(f"teacher G StyleGAN2-{t_size}", "teacher torch", timings_ms(lambda: teacher_g(z), teacher_runs),
                  gmacs(lambda: teacher_g(z)))
        table.add(t_clip, "teacher torch", timings_ms(lambda: clip.visual(pixels), teacher_runs), gmacs(lambda: clip.visual(pixels)))
        inv_t = lambda: teacher_g(z)  # noqa: E731 - the mapper's output is a W+; StyleGAN2 takes its w: same cost
        table.add("teacher inversion", "teacher torch", timings_ms(lambda: (mapper(clip.visual(pixels)), inv_t()), teacher_runs),
                  gmacs(lambda: (clip.visual(pixels), mapper(clip.visual(pixels)), inv_t())))

        for size in (1024, 512, 256):
            stage = f"G {size}" if size == 1024 else f"G {size} exit"
            macs = gmacs(lambda: g(wplus, size=size))
            feed = {"wplus": w_np}
            table.add(stage, "onnxruntime", timings_ms(lambda: sess[f"synthesis_{size}"].run(None, feed), runs), macs,
                      f"teacher G StyleGAN2-{t_size}")
            table.add(stage, "torch eager", timings_ms(lambda: g(wplus, size=size), runs), macs, f"teacher G StyleGAN2-{t_size}")
        z_np = rng.standard_normal((1, 512)).astype(np.float32)
        table.add("mapping", "onnxruntime", timings_ms(lambda: sess["mapping"].run(None, {"z": z_np}), runs),
                  gmacs(lambda: g.mapping(torch.from_numpy(z_np))))

        p_np = pixels.numpy()
        macs = gmacs(lambda: student(pixels))
        table.add("student E_I", "onnxruntime", timings_ms(lambda: sess["image_encoder"].run(None, {"pixels": p_np}), runs), macs, t_clip)
        table.add("student E_I", "torch eager", timings_ms(lambda: student(pixels), runs), macs, t_clip)
        e_np = student(pixels).numpy()
        macs = gmacs(lambda: mapper(torch.from_numpy(e_np)))
        table.add("mapper f", "onnxruntime", timings_ms(lambda: sess["mapper"].run(None, {"embedding": e_np}), runs), macs)
        table.add("mapper f", "torch eager", timings_ms(lambda: mapper(torch.from_numpy(e_np)), runs), macs)

        def invert_ort():
            emb = sess["image_encoder"].run(None, {"pixels": p_np})[0]
            wp = sess["mapper"].run(None, {"embedding": emb})[0]
            return sess["synthesis_1024"].run(None, {"wplus": wp})[0]

        inv_macs = gmacs(lambda: g(mapper(student(pixels)), size=1024))
        table.add("inversion (E_I + f + G1024)", "onnxruntime", timings_ms(invert_ort, runs), inv_macs, "teacher inversion")
        table.add("inversion (E_I + f + G1024)", "torch eager", timings_ms(lambda: g(mapper(student(pixels)), size=1024), runs), inv_macs,
                  "teacher inversion")

        delta = (torch.randn(1, 23, 512) * 0.5).numpy()
        target = e_np

        def edit_ort():
            c = sess["strength"].run(None, {"wplus": w_np, "embedding": target, "delta": delta})[0]
            return sess["synthesis_1024"].run(None, {"wplus": w_np + c[:, None, None] * delta})[0]

        table.add("learned-C strength head", "onnxruntime",
                  timings_ms(lambda: sess["strength"].run(None, {"wplus": w_np, "embedding": target, "delta": delta}), runs))
        table.add("learned-C edit (C + G1024)", "onnxruntime", timings_ms(edit_ort, runs))

        def sweep_frames():
            return [to_uint8(sess["synthesis_512"].run(None, {"wplus": w_np + c * delta})[0])[0]
                    for c in np.linspace(0, 0.8, 16, dtype=np.float32)]

        frames = sweep_frames()
        render = table.add("C-sweep 16 frames @512 (render)", "onnxruntime", timings_ms(sweep_frames, max(3, runs // 2)))
        # GIF encoding (Pillow's palette quantisation) depends on the pictures: random-weight frames are noisy
        encode = table.add("C-sweep GIF encode (media.py)", "pillow", timings_ms(lambda: encode_gif(frames, size=512), max(3, runs // 2)))
        table.rows.append({**render, "stage": "C-sweep GIF 16x512", "backend": "render+encode",
                           "median_ms": render["median_ms"] + encode["median_ms"], "min_ms": None, "gflops_per_s": None})
        # every runtime runs the tokens up to the batch's last end-of-text only (exact: causal tower), as here;
        # a prompt cut to the 77-token context is the worst case
        worst, _ = clip.tokenize(["a photo of " + "a very " * 40 + "happy person"])
        for label, full in ((f"{eot_length(tokens)} tokens", tokens), ("77, worst case", worst)):
            t_np = full[:, : eot_length(full)].numpy()
            macs = gmacs(lambda: clip.text(full))
            for model, precision in (("text_encoder", "fp32"), ("text_encoder_int8", "int8")):
                table.add(f"text encoder {precision} ({label})", "onnxruntime",
                          timings_ms(lambda: sess[model].run(None, {"tokens": t_np}), runs), macs)
            table.add(f"text encoder fp32 ({label})", "torch eager", timings_ms(lambda: clip.text(full), runs), macs)

    experiments = run_experiments(g, wplus, directory, runs, args.threads) if args.experiments else []
    table.finish()
    table.print()
    edit = {r["stage"]: r["median_ms"] for r in table.rows if r["backend"] == "onnxruntime"}
    print(f"\nlearned-C edit overhead beyond one G1024 call: {edit['learned-C edit (C + G1024)'] - edit['G 1024']:.1f} ms "
          f"(strength head alone {edit['learned-C strength head']:.2f} ms)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (all models in torch AND ONNX Runtime): {rss_mb:.0f} MB")
    load_after = os.getloadavg()
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs"
          + (" (shared machine: read as orders of magnitude)" if max(load_before[0], load_after[0]) > 1.5 else ""))
    for e in experiments:
        print(f"experiment {e['name']}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in e["median_ms"].items()))
    result = {"quick": args.quick, "preset": m["preset"].name, "threads": args.threads, "runs": runs, "teacher_runs": teacher_runs,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_before": load_before, "load_after": load_after,
                          "torch": torch.__version__, "onnxruntime": ort.__version__},
              "rows": table.rows, "experiments": experiments, "peak_rss_mb": rss_mb, "targets_ms": TARGETS_MS}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0


def run_experiments(g: Generator, wplus: torch.Tensor, directory: Path, runs: int, threads: int) -> list[dict]:
    """Generator variants at 1024, timed round-robin (one call of each per round) so contention hits all alike."""
    from functools import partial
    from unittest import mock

    import torch.nn.functional as F

    from celeblook.export import synthesis_graph

    class PaperForm(torch.nn.Module):  # the generator's own forward: Mul, haar_idwt (Split/Sub/Concat), DepthToSpace
        def forward(self, w):
            return g(w, size=1024)

    example = {"wplus": wplus.repeat(2, 1, 1)}
    paper = directory / "experiment_synthesis_1024_paper_form.onnx"
    if not paper.is_file():
        export_graph(Graph("paper", PaperForm(), example, ["image"]), paper)
    depth_to_space = directory / "experiment_synthesis_1024_depth_to_space.onnx"
    if not depth_to_space.is_file():  # the shipped rewrite, but with ONNX DepthToSpace as the pixel shuffle
        with mock.patch.object(synthesis_graph, "pixel_shuffle", lambda x: F.pixel_shuffle(x, 2)):
            export_graph(Graph("d2s", synthesis_graph.ExportedSynthesis(g.synthesis, 1024).eval(), example, ["image"]), depth_to_space)
    fused = directory / "synthesis_1024.onnx"
    feed = {"wplus": wplus.numpy()}
    int8 = directory / "experiment_synthesis_1024_int8_pointwise.onnx"
    if not int8.is_file():
        quantize_pointwise_convs(fused, int8, [g.z_to_wplus(torch.randn(1, 512), 0.7).numpy() for _ in range(8)])

    def session(path, level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL, n=threads):
        so = session_options(threads=n)
        so.graph_optimization_level = level
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return partial(s.run, None, feed)

    L = ort.GraphOptimizationLevel
    g_cl = Generator(g.config)
    g_cl.load_state_dict(g.state_dict())
    g_cl = g_cl.eval().to(memory_format=torch.channels_last)

    groups = {
        "ORT optimisation level (shipped graph)": {
            "basic": session(fused, L.ORT_ENABLE_BASIC), "extended": session(fused, L.ORT_ENABLE_EXTENDED),
            "all": session(fused, L.ORT_ENABLE_ALL)},
        "synthesis graph (ORT)": {
            "paper form": session(paper), "rewritten, DepthToSpace": session(depth_to_space),
            "rewritten, two-transpose shuffle (shipped)": session(fused)},
        "1x1 convolutions (ORT)": {"fp32 (shipped)": session(fused), "static int8, QDQ": session(int8)},
        "ORT intra-op threads": {"1 thread": session(fused, n=1), f"{threads} threads": session(fused)},
        "torch eager memory format": {
            "contiguous": lambda: g(wplus, size=1024),
            "channels_last": lambda: g_cl(wplus, size=1024)},
    }
    out = []
    with torch.inference_mode():
        for name, variants in groups.items():
            times = {k: [] for k in variants}
            for fn in variants.values():
                fn()  # warm-up
            for _ in range(runs):
                for key, fn in variants.items():
                    start = time.perf_counter()
                    fn()
                    times[key].append((time.perf_counter() - start) * 1e3)
            out.append({"name": name, "median_ms": {k: statistics.median(v) for k, v in times.items()}, "runs": runs})
            print(f"  experiment {name}: " + ", ".join(f"{k} {statistics.median(v):.1f} ms" for k, v in times.items()), flush=True)
        # quality of the int8 variant on latents it was not calibrated on
        reference, quantized = (ort.InferenceSession(str(p), session_options(threads), providers=["CPUExecutionProvider"])
                                for p in (fused, int8))
        errors = []
        for _ in range(4):
            w = {"wplus": g.z_to_wplus(torch.randn(1, 512), 0.7).numpy()}
            ref, q8 = reference.run(None, w)[0], quantized.run(None, w)[0]
            errors.append(float(np.sqrt(((ref - q8) ** 2).mean()) / ref.std()))
        next(e for e in out if e["name"] == "1x1 convolutions (ORT)")["int8_rms_error_over_image_std"] = errors
        print(f"  experiment int8 quality: RMS error / image std {', '.join(f'{e:.2f}' for e in errors)} (4 new latents)")
    return out


def quantize_pointwise_convs(src: Path, dst: Path, calibration: list[np.ndarray]) -> None:
    """Static int8 (QDQ: uint8 activations, per-channel int8 weights, min-max calibration) for the 1x1
    convolutions only: they hold ~90 % of the generator's MACs; the depthwise 3x3 ones stay fp32."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    weights = {i.name: i for i in model.graph.initializer}
    pointwise = [n.name for n in model.graph.node if n.op_type == "Conv" and n.input[1] in weights
                 and list(weights[n.input[1]].dims[2:]) == [1, 1]
                 and all(a.i == 1 for a in n.attribute if a.name == "group")]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({"wplus": w} for w in calibration)

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_quantize=pointwise)


if __name__ == "__main__":
    raise SystemExit(main())
