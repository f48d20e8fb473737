"""Peak memory of the app process with real-size models (issue 5: <= 3 GB), for each backend, and what sessions
keep (issue 19: 100 new sessions may add at most 150 MB).

    python benchmarks/app_memory.py                                   # both backends, CLIP seeded and from a file
    python benchmarks/app_memory.py --backends torch --clip-weights seeded    # one run
    python benchmarks/app_memory.py --backends torch --clip-weights seeded --sessions 1000  # a long run of sessions

Each backend runs in its own child process, so each peak is that process's own: the child builds the ffhq
architectures with seeded random weights (memory depends on shapes, not values), puts them in a Pipeline
as ``Pipeline.from_pretrained`` would (the student as E_I, as when a trained student exists), sets it as
``app.PIPELINE``, launches ``app.build_demo()`` as the app does (``app.LAUNCH``) on a free loopback port and calls
every endpoint once over HTTP with gradio_client (which runs in the same process: a few MB). Then ``--sessions``
calls of /random_face at 1024 px, each in a new session (plain HTTP, as callers without a client library make
them), as the issue measured them. It records the resident set (VmRSS) after each stage and the peak
(``ru_maxrss``). The onnx child reads real-size graphs exported from the same
seeded models by ``celeblook.export.onnx.export_models`` (done once in a separate process, kept in --work-dir).
CLIP "file" reads the teacher from a checkpoint of the same seeded weights, as the app reads the real one.

Prints one table (backend, stage, RSS MB, peak MB) and writes benchmarks/app_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # net.free_port, net.raw_call, synthetic_face.wild_photo

TARGET_MB = 3 * 1024
SESSIONS_TARGET_MB = 150  # what 100 new sessions may add
BACKENDS = ("torch", "onnx")
CLIP_WEIGHTS = ("seeded", "file")
PROMPT = "a smiling woman with red curly hair"


def rss_mb() -> float:
    """The resident set now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def real_size_models(clip_file: Path | None = None, image_tower: bool = True) -> dict:
    """The ffhq architectures with seeded random weights (benchmarks.common.seeded_models).

    ``clip_file``: read the CLIP weights from this safetensors file (``save_clip`` of the seeded model) the way
    ``create_clip`` reads a downloaded checkpoint, so the load's transient memory is part of the peak.
    ``image_tower``: False as in ``Pipeline.from_pretrained`` when a trained student is E_I.
    """
    from benchmarks.common import seeded_models

    return seeded_models("ffhq", clip_file=clip_file, image_tower=image_tower)


def prepare(onnx_dir: Path, clip_file: Path) -> None:
    """What the children read, made from one ``real_size_models()``: the real-size ONNX graphs plus the constants
    OrtEngine reads (as the CLI writes them), and the seeded CLIP as a checkpoint file. Skips what exists."""
    from celeblook.export.graphs import model_graphs
    from celeblook.export.onnx import export_models
    from celeblook.export.preset import clip_constants
    from celeblook.models.clip import save_clip

    m = real_size_models()
    g, clip = m["generator"], m["clip"]
    if not clip_file.is_file():
        print(f"saving the seeded CLIP to {clip_file}", flush=True)
        save_clip(clip, clip_file)
    if (onnx_dir / "manifest.json").is_file():
        return
    graphs = model_graphs(g, m["student"], clip, m["mapper"], m["strength"])
    constants = {"preset": "ffhq", "trained": False, "w_avg": g.w_avg[0].tolist(), "n_slots": g.config.n_slots,
                 "sizes": sorted({int(x.name.split("_")[1]) for x in graphs if x.name.startswith("synthesis_")}),
                 "clip": clip_constants(clip.spec.mean, clip.spec.std),
                 "mapper_encoder": "student", "c_max": m["strength"].config.c_max}
    print(f"exporting real-size ONNX graphs to {onnx_dir}", flush=True)
    export_models(graphs, onnx_dir, int8=("text_encoder",), constants=constants,
                  source={"preset": "ffhq", "note": "seeded random weights (benchmarks/app_memory.py)"},
                  progress=lambda s: print("  " + s, flush=True))


def endpoint_calls(photo: str) -> list[tuple[str, tuple]]:
    """One call of every endpoint, 512 px where the app offers sizes; one refinement / optimisation step so the
    gradient paths (torch generator + E_I backward) are part of the peak."""
    from gradio_client import handle_file

    return [
        ("random_face", (0, 1, 0.7, 512)),
        ("invert", (handle_file(photo), False, 0, 1, 512)),
        ("text_to_face", (PROMPT, 0, 0.7, 1, 512)),
        ("edit", ("last face", None, False, 0, "a face with a big smile", "", 0.4, False, 4, 512)),
        ("morph", ("photo", handle_file(photo), False, 0, "prompt", None, False, 0, "a famous actress with short blond hair",
                   "interpolate", 8, 4, 100, False, 512)),
    ]


def child(backend: str, onnx_dir: Path, clip_file: Path | None, sessions: int, out: Path) -> None:
    """Runs in its own process: build, serve, call every endpoint, then ``sessions`` new sessions; writes the stages
    to ``out``."""
    os.environ["CELEBLOOK_BACKEND"] = backend
    os.environ["CELEBLOOK_ONNX_DIR"] = str(onnx_dir)
    os.environ["CELEBLOOK_PRESET"] = "ffhq"
    # no weights: the module-level Pipeline.from_pretrained in app.py stops at the missing generator (cheap);
    # the real-size pipeline is put in its place below
    no_weights = onnx_dir.parent / "no_weights"
    no_weights.mkdir(exist_ok=True)
    os.environ["CELEBLOOK_WEIGHTS"] = str(no_weights)
    stages: list[dict] = []
    clip_weights = "file" if clip_file else "seeded"

    def record(stage: str, seconds: float | None = None) -> None:
        row = {"backend": backend, "clip_weights": clip_weights, "stage": stage,
               "rss_mb": rss_mb(), "peak_mb": peak_mb(), "seconds": seconds}
        stages.append(row)
        print(f"  [{backend}, CLIP {clip_weights}] {stage:28s} RSS {row['rss_mb']:7.0f} MB  peak {row['peak_mb']:7.0f} MB", flush=True)

    record("python started")
    import torch
    from gradio_client import Client
    from net import free_port, raw_call
    from synthetic_face import wild_photo

    import app
    from celeblook.engine import Models
    from celeblook.factory import create_engine
    from celeblook.models.torch_engine import TorchEngine
    from celeblook.pipeline import Pipeline

    torch.set_num_threads(2)
    record("app imported")
    start = time.perf_counter()
    m = real_size_models(clip_file, image_tower=False)  # the student is E_I, as for a trained preset
    record("models built", time.perf_counter() - start)
    preset, torch_models = m["preset"], [m[name] for name in ("generator", "clip", "student", "mapper", "strength")]
    notices = (f"image encoder: distilled {preset.student} student",)  # what create_image_encoder says for a trained one
    engine = create_engine(preset, TorchEngine(*torch_models), backend)
    app.PIPELINE = Pipeline(Models(preset, engine, *torch_models, notices))
    app.LOAD_ERROR, app.STANDING_NOTICES = None, set(app.PIPELINE.notices)
    del m, torch_models
    record("pipeline built")

    app.demo = app.build_demo()  # the handlers read the uploads this demo receives
    _, url, _ = app.demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                                **app.LAUNCH)
    work = onnx_dir.parent / f"client_{backend}_{clip_weights}"  # the photo and the client's downloads, this run's only
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    photo = work / "wild.png"
    wild_photo(0.0)[0].save(photo)
    client = Client(url, verbose=False, download_files=str(work / "downloads"))
    record("server up, client connected")
    for name, args in endpoint_calls(str(photo)):
        start = time.perf_counter()
        client.predict(*args, api_name=f"/{name}")
        record(f"after {name}", time.perf_counter() - start)
    start, last = time.perf_counter(), 0
    for done in range(1, sessions + 1):
        event, answer = raw_call(url, "random_face", [done, 1, 0.7, 1024], uuid.uuid4().hex)
        assert event == "complete", answer
        if done % max(1, sessions // 10) == 0 or done == sessions:  # seconds: the mean per call since the last row
            record(f"after {done} new sessions", (time.perf_counter() - start) / (done - last))
            start, last = time.perf_counter(), done
    app.demo.close()
    out.write_text(json.dumps(stages))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    parser.add_argument("--clip-weights", nargs="+", choices=CLIP_WEIGHTS, default=list(CLIP_WEIGHTS),
                        help="seeded: built in-process; file: read from a checkpoint as the app reads the real one")
    parser.add_argument("--sessions", type=int, default=100,
                        help="calls of /random_face at 1024 px after the endpoints, each in a new session (0: none)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "celeblook_app_memory",
                        help="keeps the exported graphs (onnx/) and the CLIP checkpoint (clip.safetensors) for reuse")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "app_memory.json")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--clip-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    onnx_dir, clip_file = args.work_dir / "onnx", args.work_dir / "clip.safetensors"
    if args.prepare:
        prepare(onnx_dir, clip_file)
        return 0
    if args.child:
        child(args.child, onnx_dir, args.clip_file, args.sessions, args.out)
        return 0

    args.work_dir.mkdir(parents=True, exist_ok=True)
    me = [sys.executable, str(Path(__file__).resolve()), "--work-dir", str(args.work_dir)]
    if ("onnx" in args.backends and not (onnx_dir / "manifest.json").is_file()
            or "file" in args.clip_weights and not clip_file.is_file()):
        subprocess.run([*me, "--prepare"], check=True)  # in its own process: its memory is not the app's
    rows = []
    for backend in args.backends:
        for weights in args.clip_weights:
            out = Path(tempfile.mkstemp(suffix=".json")[1])
            print(f"backend {backend}, CLIP {weights}: child process", flush=True)
            extra = ["--clip-file", str(clip_file)] if weights == "file" else []
            subprocess.run([*me, "--child", backend, *extra, "--sessions", str(args.sessions), "--out", str(out)], check=True)
            rows += json.loads(out.read_text())
            out.unlink()

    print(f"\n{'backend':8s} {'CLIP':7s} {'stage':30s} {'RSS MB':>8s} {'peak MB':>8s} {'s':>6s}")
    for r in rows:
        secs = f"{r['seconds']:.1f}" if r["seconds"] is not None else "-"
        print(f"{r['backend']:8s} {r['clip_weights']:7s} {r['stage']:30s} {r['rss_mb']:8.0f} {r['peak_mb']:8.0f} {secs:>6s}")
    peaks = {}
    for r in rows:
        key = f"{r['backend']}, CLIP {r['clip_weights']}"
        peaks[key] = max(peaks.get(key, 0.0), r["peak_mb"])
    for key, peak in peaks.items():
        print(f"peak of the app process ({key}): {peak:.0f} MB ({'within' if peak <= TARGET_MB else 'OVER'} the {TARGET_MB} MB target)")
    added = {}  # the resident set after each row of new sessions, less the one before the first
    for r in rows:
        if not r["stage"].endswith("new sessions"):
            before = r["rss_mb"]
            continue
        added.setdefault(f"{r['backend']}, CLIP {r['clip_weights']}", {})[r["stage"].split()[1]] = round(r["rss_mb"] - before)
    for key, growth in added.items():
        print(f"RSS added by new sessions ({key}), MB after n of them: {growth} (target: {SESSIONS_TARGET_MB} at 100)")
    result = {"target_mb": TARGET_MB, "peak_mb": peaks, "sessions_added_mb": added, "rows": rows,
              "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
              "note": "ffhq architectures, seeded random weights; student as E_I; one call per endpoint over HTTP; "
                      "CLIP 'file' = read from a safetensors checkpoint as create_clip reads the downloaded one"}
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
