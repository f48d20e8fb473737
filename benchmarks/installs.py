"""The two installs side by side: size on disk and time from `python app.py` to the first answer.

The full install (.venv, requirements.txt) serves with torch; the runtime install (.venv-runtime,
requirements-runtime.txt, made by `CELEBLOOK_RUNTIME=1 bash dev.sh`) serves the same preset's ONNX export with
ONNX Runtime alone. "First answer" is a `/random_face` call through gradio_client (1 face, 256 px), timed from
the process start, so it includes importing, loading the models and Gradio's start.

    python -m benchmarks.installs --export DIR [--preset tiny] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradio_client import Client

from benchmarks.common import machine, print_table

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).with_name("results_installs.json")


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def first_answer(python: str, env: dict, port: int) -> float:
    """Seconds from starting the app to the first /random_face answer."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen([python, "app.py"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  env={**env, "GRADIO_SERVER_PORT": str(port)})
        try:
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    raise SystemExit(f"the app exited: {log.read().decode()[-2000:]}")
                try:
                    Client(f"http://127.0.0.1:{port}/", verbose=False).predict(0, 1, 0.7, 256, api_name="/random_face")
                    return time.perf_counter() - started
                except Exception:  # not listening yet
                    time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True, help="an export of the preset (python -m celeblook export onnx)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    runtime = ROOT / ".venv-runtime" / "bin" / "python"
    if not runtime.exists():
        raise SystemExit("no runtime install: run `CELEBLOOK_RUNTIME=1 bash dev.sh python -V` first")
    base = {**os.environ, "CELEBLOOK_PRESET": args.preset, "CELEBLOOK_NO_DOWNLOAD": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_ANALYTICS_ENABLED": "False", "OMP_WAIT_POLICY": "PASSIVE", "CELEBLOOK_ONNX_DIR": str(args.export.resolve())}
    installs = {
        "full, torch": (sys.executable, {**base, "CELEBLOOK_BACKEND": "torch"}, Path(sys.prefix)),
        "full, onnx": (sys.executable, {**base, "CELEBLOOK_BACKEND": "onnx"}, Path(sys.prefix)),
        "runtime (no torch)": (str(runtime), {**base, "CELEBLOOK_BACKEND": "onnx"}, runtime.parents[1]),
    }
    rows, results = [], {"machine": machine(), "preset": args.preset, "installs": {}}
    for name, (python, env, venv) in installs.items():
        times = [first_answer(python, env, args.port) for _ in range(args.runs)]
        mb = size_mb(venv)
        results["installs"][name] = {"venv_mb": mb, "first_answer_s": times}
        rows.append([name, mb, statistics.median(times)])
    print(results["machine"])
    print_table(["install", "venv (MB)", "start to first answer (s, median)"], rows)
    OUT.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
