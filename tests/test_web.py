"""The in-browser version (web/, onnxruntime-web) in a real headless Chromium, against Python ONNX Runtime.

The tiny preset's exports (tests/_export_tiny.py) are built into a site, served by ``celeblook.web.serve`` and
driven through ``window.celeblook``: every feature on wasm and on WebGPU (SwiftShader's software adapter, from
``--enable-unsafe-webgpu``; slow, so 256 px and batch 1 there). fp32 outputs must match ORT CPU to 1e-3; the
int8 text encoder is compared by cosine (x86 and wasm int8 kernels differ by ~2e-2, toolchain.md §9).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from celeblook.preprocess import photos_to_clip
from celeblook.runtime.ort import open_session

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (Debian package 'chromium'); browser tests skipped", allow_module_level=True)
if shutil.which("node") is None or shutil.which("npm") is None:
    pytest.skip("node/npm are not installed: the page's onnxruntime-web comes from npm; web tests skipped",
                allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

ARGS = ["--enable-unsafe-webgpu", "--no-sandbox"]  # the only flag WebGPU needs here (toolchain.md §7.3)
FIXTURES = Path(__file__).with_name("web_fixtures")
FP32_TOL = 1e-3
SLOTS, STYLE = 23, 512

# Float32Array <-> base64 in the page: images are megabytes, JSON lists of floats would be slow
HELPERS = """
window.__f32 = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new Float32Array(u.buffer); };
window.__b64 = (arr) => { const u = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength); let s = '';
  for (let i = 0; i < u.length; i += 32768) s += String.fromCharCode(...u.subarray(i, i + 32768)); return btoa(s); };
"""


def f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float32).tobytes()).decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from _export_tiny import tiny_export

    from celeblook.web.build import build_site

    exports = tiny_export(tmp_path_factory.mktemp("web_exports"))
    return build_site(tmp_path_factory.mktemp("web") / "site", exports=exports)


@pytest.fixture(scope="module")
def url(site):
    from celeblook.web.serve import serve_in_thread

    server, base = serve_in_thread(site)
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(tempfile.mkdtemp(), executable_path=CHROMIUM, headless=True, args=ARGS)
        context.add_init_script(HELPERS)
        yield context
        context.close()


def open_page(browser, url: str, backend: str):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}?backend={backend}")
    page.evaluate("window.celeblook.ready")
    assert not errors, errors
    return page


class Reference:
    """Python ONNX Runtime (CPU) on the same exported files the site serves."""

    def __init__(self, models: Path):
        self.models = models
        self.manifest = json.loads((models / "manifest.json").read_text())
        self.w_avg = np.asarray(self.manifest["constants"]["w_avg"], np.float32)
        self._sessions = {}

    def run(self, file: str, **feeds) -> np.ndarray:
        if file not in self._sessions:
            self._sessions[file] = open_session(self.models / file, "int8" if "int8" in file else "fp32", threads=1)
        return self._sessions[file].run(None, feeds)[0]


@pytest.fixture(scope="module")
def ref(site) -> Reference:
    return Reference(site / "models")


def photo_rgba(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth coloured picture with noise and a half-transparent corner (exercises compositing on white)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 17), 128 + 100 * np.cos(y / 23), 255 * x / width], -1)
    rgb = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255)
    alpha = np.full((height, width, 1), 255.0)
    alpha[: height // 4, : width // 4] = rng.integers(0, 256, (height // 4, width // 4, 1))
    return np.concatenate([rgb, alpha], -1).astype(np.uint8)


def js_photo(page, rgba: np.ndarray, call: str):
    """Run ``call`` (e.g. 'cl.invert(img)') in the page on an ImageData of ``rgba``; returns a numpy array."""
    h, w = rgba.shape[:2]
    data = base64.b64encode(rgba.tobytes()).decode()
    return f32(page.evaluate(f"""async ([data, w, h]) => {{
        const cl = await window.celeblook.ready;
        const bytes = Uint8ClampedArray.from(atob(data), (c) => c.charCodeAt(0));
        const img = new ImageData(bytes, w, h);
        return window.__b64(await {call});
    }}""", [data, w, h]))


def check_random_face(page, ref: Reference, size: int, seed: int = 5, psi: float = 0.7) -> None:
    got = page.evaluate("""async ([seed, psi, size]) => { const cl = await window.celeblook.ready;
        const r = await cl.randomLatent(seed, psi); const again = await cl.randomLatent(seed, psi);
        return {z: window.__b64(r.z), wplus: window.__b64(r.wplus), same: again.wplus.every((v, i) => v === r.wplus[i]),
                image: window.__b64(await cl.render(r.wplus, 1, size))}; }""", [seed, psi, size])
    z, wplus = f32(got["z"]), f32(got["wplus"]).reshape(1, SLOTS, STYLE)
    assert got["same"], "a seed must give the same face every time"
    assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2  # N(0, 1) samples
    w = ref.run("mapping.onnx", z=z[None])
    expected = np.broadcast_to(ref.w_avg + psi * (w - ref.w_avg), (1, SLOTS, STYLE))
    assert np.abs(wplus - expected).max() <= FP32_TOL
    image = ref.run(f"synthesis_{size}.onnx", wplus=wplus)
    assert np.abs(f32(got["image"]) - image.ravel()).max() <= FP32_TOL


def check_invert(page, ref: Reference, rgba: np.ndarray) -> None:
    pixels = photos_to_clip([Image.fromarray(rgba, "RGBA")], *(ref.manifest["constants"]["clip"][k] for k in ("mean", "std")))
    js_pixels = js_photo(page, rgba, "cl.preprocess(img)")
    # Pillow's bicubic resize is ported exactly: the only difference is float rounding of the normalisation
    assert np.abs(js_pixels - pixels.numpy().ravel()).max() <= 1e-5
    wplus = js_photo(page, rgba, "cl.invert(img)")
    embedding = ref.run("image_encoder.onnx", pixels=pixels.numpy())
    assert np.abs(wplus - ref.run("mapper.onnx", embedding=embedding).ravel()).max() <= FP32_TOL


def check_edit(page, ref: Reference, size: int) -> None:
    from celeblook.models.clip import create_clip
    from celeblook.presets import get_preset

    target, source = "a smiling woman with red hair!", "a face"
    wplus = np.random.default_rng(1).standard_normal((1, SLOTS, STYLE)).astype(np.float32) * 0.5 + ref.w_avg
    got = page.evaluate("""async ([w, target, source, size]) => { const cl = await window.celeblook.ready;
        const wplus = window.__f32(w);
        const text = await cl.encodeText([target, source]);
        const learned = await cl.edit(wplus, target, {source, size});
        const manual = await cl.edit(wplus, target, {source, strength: 0.3, size});
        const same = await cl.direction(target, target);
        return {text: window.__b64(text.embedding), delta: window.__b64(learned.delta), C: learned.C,
                image: window.__b64(learned.image), manualC: manual.C, manualWplus: window.__b64(manual.wplus),
                zero: same.delta.every((v) => v === 0)}; }""", [b64(wplus), target, source, size])
    tokens = create_clip(get_preset("tiny")).tokenize([target, source])[0].numpy()
    expected_text = ref.run("text_encoder_int8.onnx", tokens=tokens)
    js_text = f32(got["text"]).reshape(2, -1)
    cosine = (js_text * expected_text).sum(1) / np.linalg.norm(js_text, axis=1) / np.linalg.norm(expected_text, axis=1)
    assert cosine.min() >= 0.999 and np.abs(js_text - expected_text).max() <= 5e-2  # int8: x86 vs wasm kernels
    # from here on fp32 graphs, fed the browser's own text embeddings
    mapped = ref.run("mapper.onnx", embedding=js_text)
    delta = mapped[:1] - mapped[1:]
    assert np.abs(f32(got["delta"]) - delta.ravel()).max() <= FP32_TOL
    c = ref.run("strength.onnx", wplus=wplus, embedding=js_text[:1], delta=delta)[0]
    assert 0 < got["C"] < ref.manifest["constants"]["c_max"] and abs(got["C"] - c) <= FP32_TOL
    image = ref.run(f"synthesis_{size}.onnx", wplus=wplus + np.float32(got["C"]) * delta)
    assert np.abs(f32(got["image"]) - image.ravel()).max() <= FP32_TOL
    assert got["manualC"] == 0.3
    assert np.abs(f32(got["manualWplus"]) - (wplus + 0.3 * delta).ravel()).max() <= FP32_TOL
    assert got["zero"], "the same prompt as target and source must give a zero direction"


def check_gif(page, frames: int, size: int) -> None:
    data = page.evaluate("""async ([frames, size]) => { const cl = await window.celeblook.ready;
        const a = (await cl.randomLatent(1)).wplus, b = (await cl.randomLatent(2)).wplus;
        const gif = await cl.morphGif(a, b, {frames, size});
        let s = ''; for (const x of gif) s += String.fromCharCode(x); return btoa(s); }""", [frames, size])
    gif = base64.b64decode(data)
    assert gif[:6] == b"GIF89a"
    image = Image.open(io.BytesIO(gif))
    assert image.n_frames == frames and image.size == (size, size) and image.info.get("loop") == 0


# --- the page on wasm ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wasm_page(browser, url):
    page = open_page(browser, url, "wasm")
    yield page
    page.close()


def test_page_loads_with_sizes_and_isolation(wasm_page):
    info = wasm_page.evaluate("""async () => { const cl = await window.celeblook.ready;
        return {backend: cl.backend, precision: cl.precision, sizes: cl.sizes, isolated: crossOriginIsolated,
                status: document.getElementById('status').textContent}; }""")
    assert info["backend"] == "wasm" and info["precision"] == "fp32"
    assert info["sizes"] == [256, 512, 1024] and info["isolated"]  # COOP/COEP from the server: wasm threads allowed
    assert info["status"].startswith("Ready: wasm") and " MB to download" in info["status"]


def test_tokenizer_matches_open_clip(wasm_page):
    cases = json.loads((FIXTURES / "tokenizer_cases.json").read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 200
    got = wasm_page.evaluate("""async (texts) => { const cl = await window.celeblook.ready;
        return Promise.all(texts.map(async (t) => { const r = await cl.tokenize(t); return [Array.from(r.ids), r.truncated]; })); }""",
                             [c["text"] for c in cases])
    wrong = [(c["text"][:40], ids[:8], c["ids"][:8]) for c, (ids, _) in zip(cases, got) if ids != c["ids"]]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ from open_clip, e.g. {wrong[:3]}"
    for c, (ids, truncated) in zip(cases, got):
        assert truncated == (c["encode_length"] + 2 > 77)
        if truncated:
            assert ids[-1] == 49407  # end of text stays last when a prompt is cut


@pytest.mark.parametrize("size", [256, 1024])
def test_wasm_random_face_matches_ort(wasm_page, ref, size):
    check_random_face(wasm_page, ref, size)


def test_wasm_render_batch_matches_ort(wasm_page, ref):
    wplus = np.random.default_rng(0).standard_normal((2, SLOTS, STYLE)).astype(np.float32)
    got = wasm_page.evaluate("""async (w) => { const cl = await window.celeblook.ready;
        return window.__b64(await cl.render(window.__f32(w), 2, 512)); }""", b64(wplus))
    assert np.abs(f32(got) - ref.run("synthesis_512.onnx", wplus=wplus).ravel()).max() <= FP32_TOL


@pytest.mark.parametrize("shape", [(240, 320), (150, 100)])  # downscale (landscape) and upscale (portrait)
def test_wasm_invert_matches_python_preprocessing_and_ort(wasm_page, ref, shape):
    check_invert(wasm_page, ref, photo_rgba(shape[1], shape[0], seed=shape[0]))


def test_wasm_edit_matches_ort(wasm_page, ref):
    check_edit(wasm_page, ref, 256)


def test_wasm_text_encoder_runs_only_up_to_the_last_eot(wasm_page, ref):
    """encodeText feeds (N, last EOT + 1) tokens, not (N, 77): same embeddings as Python's ORT on all 77 columns."""
    from celeblook.models.clip import create_clip, eot_length
    from celeblook.presets import get_preset

    prompts = ["a face", "an old man with a grey beard and round glasses"]
    got = wasm_page.evaluate("""async (prompts) => { const cl = await window.celeblook.ready;
        const ort = await import(new URL('vendor/ort/ort.wasm.min.mjs', location.href).href);  // the page's module
        const run = ort.InferenceSession.prototype.run, dims = [];
        ort.InferenceSession.prototype.run = function (feeds, ...rest) {
          if (feeds.tokens) dims.push(Array.from(feeds.tokens.dims));
          return run.call(this, feeds, ...rest);
        };
        try { return {dims, text: window.__b64((await cl.encodeText(prompts)).embedding)}; }
        finally { ort.InferenceSession.prototype.run = run; } }""", prompts)
    tokens = create_clip(get_preset("tiny")).tokenize(prompts)[0].numpy()
    assert got["dims"] == [[2, eot_length(tokens)]] and eot_length(tokens) < 15
    expected = ref.run("text_encoder_int8.onnx", tokens=tokens)
    js_text = f32(got["text"]).reshape(2, -1)
    cosine = (js_text * expected).sum(1) / np.linalg.norm(js_text, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999  # int8: x86 vs wasm kernels (see check_edit)


def test_wasm_morph_gif(wasm_page):
    check_gif(wasm_page, frames=5, size=256)


def test_page_buttons_make_a_face_and_a_gif(wasm_page):
    page = wasm_page
    page.fill("#seed", "7")
    page.select_option("#size", "256")
    page.click("#random")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Random face: done')")
    page.click("#keep")
    page.fill("#seed", "8")
    page.click("#random")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Random face: done')")
    pixels = page.evaluate("""() => { const c = document.getElementById('face');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
        return [c.width, lo, hi]; }""")
    assert pixels[0] == 256 and pixels[2] > pixels[1]  # a rendered, non-constant face
    page.fill("#frames", "3")
    page.click("#morph")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Morph GIF: done')")
    assert page.get_attribute("#gif-link", "href").startswith("blob:")


def test_bad_inputs_are_rejected_with_clear_errors(wasm_page):
    errors = wasm_page.evaluate("""async () => { const cl = await window.celeblook.ready; const out = [];
        const w = new Float32Array(23 * 512);
        for (const f of [() => cl.render(new Float32Array(5), 1, 256), () => cl.render(w, 1, 300),
                         () => cl.render(w.map(() => NaN), 1, 256), () => cl.edit(w, '   '), () => cl.morphGif(w, w, {frames: 1}),
                         () => cl.randomLatent(-1), () => cl.edit(w, 'a face', {strength: 'huge'})]) {
          try { await f(); out.push(null); } catch (e) { out.push(e.message); } }
        return out; }""")
    assert all(errors), errors
    assert "Float32Array" in errors[0] and "size must be one of 256, 512, 1024" in errors[1] and "NaN" in errors[2]
    assert "prompt is empty" in errors[3] and "frames" in errors[4] and "seed" in errors[5] and "strength C" in errors[6]


# --- the page on WebGPU (SwiftShader) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def webgpu_page(browser, url):
    page = browser.new_page()
    page.goto(url)
    if not page.evaluate("async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter())"):
        pytest.skip("this Chromium gives no WebGPU adapter even with --enable-unsafe-webgpu")
    page.close()
    page = open_page(browser, url, "webgpu")
    yield page
    page.close()


def test_webgpu_every_feature_matches_ort(webgpu_page, ref):
    info = webgpu_page.evaluate("async () => { const cl = await window.celeblook.ready; return [cl.backend, cl.precision, cl.adapter]; }")
    # SwiftShader has no shader-f16, so the page must have picked the fp32 files (fp16 sessions fail there)
    assert info[0] == "webgpu" and info[1] == "fp32", info
    check_random_face(webgpu_page, ref, 256)
    check_invert(webgpu_page, ref, photo_rgba(240, 180, seed=3))
    check_edit(webgpu_page, ref, 256)
    check_gif(webgpu_page, frames=2, size=256)


# --- build and serve, without a browser ---------------------------------------------------------------------


def test_site_is_self_contained(site):
    for path in ("index.html", "src/celeblook.js", "src/tokenizer.js", "vendor/ort/ort.webgpu.min.mjs",
                 "vendor/ort/ort-wasm-simd-threaded.asyncify.wasm", "vendor/ort/ort.wasm.min.mjs",
                 "vendor/gifenc/gifenc.esm.js", "vendor/bpe_simple_vocab_16e6.txt.gz", "models/manifest.json"):
        assert (site / path).is_file(), path
    lock = json.loads((Path(__file__).parents[1] / "web" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == "1.30.0"
    for page_file in [site / "index.html", *(site / "src").glob("*.js")]:
        text = page_file.read_text()
        assert "cdn" not in text.lower() and "unpkg" not in text and "import('http" not in text, page_file


def test_server_headers_and_mime_types(url):
    expected = {"index.html": "text/html", "src/app.js": "text/javascript", "vendor/ort/ort.wasm.min.mjs": "text/javascript",
                "vendor/ort/ort-wasm-simd-threaded.wasm": "application/wasm", "models/mapping.onnx": "application/octet-stream"}
    for path, mime in expected.items():
        with urllib.request.urlopen(urllib.request.Request(url + path, method="HEAD")) as response:
            assert response.headers["Content-Type"].startswith(mime), path
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert url.startswith("http://127.0.0.1:")


def run_cli(capsys, *args: str) -> tuple[int, str]:
    from celeblook.cli import main

    code = main(["web", *args])
    return code, capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, capsys):
    code, err = run_cli(capsys, "serve", str(tmp_path))
    assert code == 2 and "is not a built site" in err and err.count("\n") == 1
    (tmp_path / "exports").mkdir()
    code, err = run_cli(capsys, "build", "--out", str(tmp_path / "site"), "--exports", str(tmp_path / "exports"))
    assert code == 2 and "has no manifest.json" in err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "build", "--out", str(tmp_path / "busy"), "--exports", str(tmp_path / "exports"))
    assert code == 2 and "not a previous site build" in err
    assert (tmp_path / "busy" / "notes.txt").exists()  # never deletes a directory it did not write
