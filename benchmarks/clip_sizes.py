"""Clip sizes: MP4 (H.264) and WebM (VP9) against the GIF for the same frames, from Python (celeblook.clips: Pillow's
GIF, PyAV's libx264 CRF 23 and libvpx-vp9 CRF 32) and from the page (web/src/clips.js in headless Chromium: gifenc's
GIF, WebCodecs at mediabunny's QUALITY_HIGH bitrate), with the encode time of each.

    python benchmarks/clip_sizes.py               # prints the table, writes benchmarks/results_clips.json
    python benchmarks/clip_sizes.py --no-browser  # the Python encoders only

The frames (16 a loop, 512 px, 80 ms each, no ping-pong, as the page's morph and sweep make them):
- morph, real faces: two real photos (scikit-image's astronaut and matplotlib's Grace Hopper, both public domain),
  aligned the FFHQ way and cross-dissolved: a morph's smooth change over the whole face;
- sweep, real face: the astronaut's crop blending into its mirror image towards the end: a sweep's change
  concentrated in part of the frame, over a still background;
- morph / sweep, generator: the ffhq-sized generator with seeded random weights (no trained weights are shipped):
  its pictures are noise-like, the codecs' worst case rather than a face's.
Sizes are exact for these frames; times are medians of 3 on this machine (noisy when it is shared).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

from benchmarks.browser import CHROMIUM  # noqa: E402
from benchmarks.common import print_table  # noqa: E402
from celeblook.clips import encode_clip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results_clips.json")
FRAMES, SIDE, FRAME_MS = 16, 512, 80
RUNS = 3


def real_faces() -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's and Grace Hopper's FFHQ crops at SIDE px."""
    import importlib.util

    from skimage import data

    from celeblook.photo.aligned import align_photo

    spec = importlib.util.find_spec("matplotlib")
    hopper = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    crops = [align_photo(Image.fromarray(data.astronaut()), size=SIDE).aligned.image, align_photo(hopper, size=SIDE).aligned.image]
    return tuple(np.asarray(c.convert("RGB"), np.float32) for c in crops)


def blend(a: np.ndarray, b: np.ndarray, weights) -> list[np.ndarray]:
    return [np.rint((1 - t) * a + t * b).astype(np.uint8) for t in weights]


def generator_frames() -> dict[str, list[np.ndarray]]:
    """A 16-frame morph between two seeded faces and a sweep along a seeded direction, from the ffhq generator."""
    import torch

    from benchmarks.common import seeded_models
    from celeblook.media import to_uint8

    generator = seeded_models("ffhq", clip=False)["generator"]
    with torch.no_grad():
        a, b = (generator.z_to_wplus(generator.seeded_z(s), 0.7) for s in (1, 2))
        delta = torch.randn(a.shape, generator=torch.Generator().manual_seed(3)) * 0.5
        render = lambda w: to_uint8(generator(w, size=SIDE))[0]  # noqa: E731
        ts = np.linspace(0, 1, FRAMES, dtype=np.float32)
        return {"morph, generator": [render(a + float(t) * (b - a)) for t in ts],
                "sweep, generator": [render(a + float(0.8 * t) * delta) for t in ts]}


def frame_sets(with_generator: bool) -> dict[str, list[np.ndarray]]:
    astronaut, hopper = real_faces()
    mirrored = np.asarray(ImageOps.mirror(Image.fromarray(astronaut.astype(np.uint8))), np.float32)
    # the mirror differs from the face only where it is not symmetric (hair, collar, background): a local change
    sweep_weights = np.clip(np.linspace(-0.5, 1, FRAMES), 0, 1)
    sets = {"morph, real faces": blend(astronaut, hopper, np.linspace(0, 1, FRAMES)),
            "sweep, real face": blend(astronaut, mirrored, sweep_weights)}
    return sets | (generator_frames() if with_generator else {})


def python_sizes(frames: list[np.ndarray]) -> dict[str, dict]:
    out = {}
    for format in ("gif", "mp4", "webm"):
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            clip = encode_clip(frames, format, FRAME_MS)
            times.append(time.perf_counter() - start)
        out[f"python {format}"] = {"bytes": len(clip.data), "codec": format if format == "gif" else ("h264" if format == "mp4" else "vp9"),
                                   "encode_ms": round(statistics.median(times) * 1e3)}
    return out


BROWSER = """async ([frames, side, ms]) => {
  const {clipEncoder} = await import('/src/clips.js');
  const images = frames.map((b64) => new ImageData(Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0)), side, side));
  const out = {};
  for (const format of ['gif', 'mp4', 'webm']) {
    const times = [];
    let clip;
    for (let run = 0; run < RUNS; run++) {
      const start = performance.now();
      const encoder = await clipEncoder(format, side, ms);
      for (const image of images) await encoder.add(image);
      clip = await encoder.finish();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    out[`page ${format}`] = {bytes: clip.bytes.length, codec: clip.codec, mime: clip.mime,
      encode_ms: Math.round(times[(times.length - 1) / 2])};
  }
  return out; }""".replace("RUNS", str(RUNS))


def browser_sizes(sets: dict[str, list[np.ndarray]]) -> dict[str, dict]:
    """The page's own encoders on the same frames: web/ (its src/ and vendor/) served on localhost."""
    from playwright.sync_api import sync_playwright

    from celeblook.web.serve import serve_in_thread

    if not (ROOT / "web" / "vendor" / "mediabunny").is_dir():
        raise SystemExit("web/vendor/ is missing: cd web && npm ci && npm run build")
    server, base = serve_in_thread(ROOT / "web")
    out = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{base}README.md")  # any page of that origin: the modules import from it
            for name, frames in sets.items():
                rgba = [base64.b64encode(np.dstack([f, np.full(f.shape[:2], 255, np.uint8)]).tobytes()).decode() for f in frames]
                out[name] = page.evaluate(BROWSER, [rgba, SIDE, FRAME_MS])
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-browser", action="store_true", help="only the Python encoders")
    parser.add_argument("--no-generator", action="store_true", help="only the real-photo frames (no torch)")
    args = parser.parse_args()
    sets = frame_sets(not args.no_generator)
    results = {name: python_sizes(frames) for name, frames in sets.items()}
    if not args.no_browser:
        for name, sizes in browser_sizes(sets).items():
            results[name] |= sizes
    rows = []
    for name, encoders in results.items():
        gif = encoders["python gif"]["bytes"]
        for encoder, r in encoders.items():
            rows.append([name, encoder, r["codec"], round(r["bytes"] / 1024), f"{r['bytes'] / gif:.2f}", r["encode_ms"]])
    print(f"{FRAMES} frames, {SIDE} px, {FRAME_MS} ms each")
    print_table(["frames", "encoder", "codec", "KB", "vs Python's GIF", "encode ms"], rows)
    with tempfile.NamedTemporaryFile("w", dir=RESULTS.parent, suffix=".tmp", delete=False) as f:
        json.dump({"frames": FRAMES, "side": SIDE, "frame_ms": FRAME_MS, "results": results}, f, indent=1)
    os.replace(f.name, RESULTS)


if __name__ == "__main__":
    main()
