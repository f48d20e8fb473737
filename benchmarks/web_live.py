"""Live mode and the photo path in the page, per stage (issue 22): run by ``python benchmarks/web.py --live``.

Live: Chromium's fake camera plays tests/camera_video.py's video (two real people in turn, still then moving,
320x240 at 10 fps); live mode runs for a warm-up, then ``seconds`` more, and celeblook.live.stats() gives the
medians of the last 12 results per stage, the fps over them and the camera-to-result latency (from the frame's
presentation to the result drawn). Photo: scikit-image's astronaut (512 px) through each step of the page's
photo path once its models are loaded (align, crop, encode, map, synthesize, score), each variant in the same run.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the camera video the tests use

from benchmarks.browser import chromium_context  # noqa: E402

STAGES = ["track", "crop", "encode", "map", "edit", "synth", "paste"]

LIVE = """async ([size, warmup, seconds, options]) => {
  const cl = await window.celeblook.ready;
  await cl.live.start({size, pasteBack: true, ...options});
  await new Promise((resolve) => setTimeout(resolve, warmup * 1000));
  const before = cl.live.stats();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = cl.live.stats();
  await cl.live.stop();
  return {...after, frames: after.frames - before.frames, dropped: after.dropped - before.dropped};
}"""

PHOTO = """async ([photo, size, runs, options]) => {
  const cl = await window.celeblook.ready;
  const img = new Image(); img.src = photo; await img.decode();
  const canvas = new OffscreenCanvas(img.width, img.height); const context = canvas.getContext('2d'); context.drawImage(img, 0, 0);
  const image = context.getImageData(0, 0, img.width, img.height);
  const times = {align: [], crop: [], encode: [], map: [], synth: [], score: [], total: []};
  let first = null;
  for (let r = 0; r < runs + 1; r++) {
    const lap = {}; let t = performance.now(); const start = t;
    const step = (name) => { const now = performance.now(); lap[name] = now - t; t = now; };
    const {faces} = await cl.align(image, options); step('align');
    const crop = await cl.cropQuad(image, faces[0].quad, 512); step('crop');
    const embedding = await cl.encodeImage(crop); step('encode');
    const wplus = await cl.map(embedding); step('map');
    const face = await cl.render(wplus, 1, size); step('synth');
    lap.total = performance.now() - start;
    await cl.embedFace(face, size); step('score');
    if (r === 0) first = lap.total + lap.score; // the profile's first photo: the detector and sessions load
    else for (const k of Object.keys(times)) times[k].push(lap[k]);
  }
  const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
  return {...Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)])), first};
}"""


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"


def live_rows(url: str, graphs: str, sizes: list[int], threads: list[int], warmup: float, seconds: float,
              variants: dict[str, dict]) -> list[list]:
    """Rows (graphs, size, threads, variant, fps, latency, stages..., frames, dropped, machine) of live runs."""
    from camera_video import two_people_y4m
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        camera = Path(folder) / "two_people.y4m"
        camera.write_bytes(two_people_y4m())
        args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={camera}"]
        with chromium_context(p, args=args, permissions=["camera"]) as context:
            for n in threads:
                page = context.new_page()
                page.goto(f"{url}?backend=wasm&threads={n}")
                for size in sizes:
                    for name, options in variants.items():
                        s = page.evaluate(LIVE, [size, warmup, seconds, options])
                        rows.append([graphs, size, n, name, round(s["fps"], 2), round(s["latencyMs"] or 0),
                                     *(round(s["stages"][k] or 0, 1) for k in STAGES), s["frames"], s["dropped"], machine()])
                        print(rows[-1], flush=True)
                page.close()
    return rows


def photo_rows(url: str, photo: str, size: int, runs: int, threads: list[int], variants: dict[str, dict]) -> list[list]:
    """Rows (threads, variant, align, crop, encode, map, synth, total to the face, score, the first photo with its
    score, machine): the photo path in a fresh profile, so the first variant's first photo downloads and loads
    the models."""
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p, chromium_context(p) as context:
        for n in threads:
            page = context.new_page()
            page.goto(f"{url}?backend=wasm&threads={n}")
            for name, options in variants.items():
                t = page.evaluate(PHOTO, [photo, size, runs, options])
                rows.append([n, name, *(round(t[k]) for k in ("align", "crop", "encode", "map", "synth", "total", "score", "first")),
                             machine()])
                print(rows[-1], flush=True)
            page.close()
    return rows


def astronaut_png(site: Path) -> str:
    from PIL import Image
    from skimage.data import astronaut

    Image.fromarray(np.asarray(astronaut())).save(site / "astronaut.png")
    return "astronaut.png"
