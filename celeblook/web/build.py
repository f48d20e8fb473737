"""Assemble the static site: the page (``web/``), its runtime (pinned by npm, copied by ``npm run build``),
CLIP's BPE vocabulary for the JavaScript tokenizer, the exported ONNX models and the prompt bank.

    SITE/index.html, src/*.js, src/style.css     the page (src/worker.js runs the models)
    SITE/site.json                               where the models are, the prompt bank, the alignment model
    SITE/vendor/ort/, vendor/gifenc/             onnxruntime-web (MIT) and gifenc (MIT): no CDN
    SITE/vendor/face-api/ (+ model/)             face-api (MIT): SSD face detector + 68-point landmarks
    SITE/vendor/tfjs-wasm/                       TensorFlow.js wasm kernels for face-api (Apache-2.0)
    SITE/vendor/bpe_simple_vocab_16e6.txt.gz     CLIP's merges file (celeblook/data, MIT); html5_entities.json (Python's table)
    SITE/models/manifest.json (+ *.onnx)         one export directory (``python -m celeblook export onnx``)
    SITE/models/prompts_fp16.bin                 the curated prompts' text embeddings (fp16): no text encoder needed

Models come from an existing export directory (``exports``; every file's sha256 is checked against its
manifest) or are exported here from a preset, fp32 + fp16 (the page picks fp16 on WebGPU with shader-f16).
With ``space`` the folder is also a static Hugging Face Space (README.md front matter); with ``models_url``
the ONNX files go to a separate folder for a model repository and the page fetches them from that URL.
"""

from __future__ import annotations

import hashlib
import html.entities
import inspect
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from ..data import VOCAB_FILE
from ..errors import CelebError, InputError, WeightsError
from ..files import sha256_file
from ..tokenizer import default_tokenizer

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PAGE = ("index.html", "src")
VENDOR = "vendor"
VOCAB = VOCAB_FILE.name  # the page fetches vendor/<this name>
ENTITIES = "html5_entities.json"
MANIFEST = "manifest.json"
SITE_CONFIG = "site.json"
SITE_FORMAT = "celeblook-site/1"
PROMPTS_FILE = "prompts_fp16.bin"
PROMPTS_MAX_BYTES = 2**20  # the curated bank must stay a small first download
ALIGN_MODEL = "face-api/model"
# what the page suggests (the Gradio app's text-to-face examples, the page's defaults) besides the edit bank
EXAMPLE_PROMPTS = ("a smiling woman with red curly hair", "an old man with a grey beard and glasses",
                   "a young man with a mohawk", "a person with blonde hair")
SPACE_HEADERS = {  # cross-origin isolation (wasm threads); Spaces accepts exactly these three keys
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "cross-origin",
}
Progress = Callable[[str], None]


def _npm(args: list[str], say: Progress) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise CelebError("npm is not installed: it is needed once to fetch onnxruntime-web (install Node.js 20+)")
    say(f"running npm {' '.join(args)} in {WEB_DIR}")
    done = subprocess.run([npm, *args], cwd=WEB_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise CelebError(f"npm {' '.join(args)} failed in {WEB_DIR}: {tail[0]}")


def ensure_vendor(progress: Progress | None = None) -> Path:
    """web/vendor/, made by ``npm ci`` + ``npm run build`` when missing or older than package-lock.json."""
    say = progress or (lambda _msg: None)
    lock = WEB_DIR / "package-lock.json"
    modules = WEB_DIR / "node_modules" / ".package-lock.json"  # npm rewrites it on every install
    if not modules.is_file() or modules.stat().st_mtime < lock.stat().st_mtime:
        _npm(["ci", "--no-audit", "--no-fund"], say)
    vendor = WEB_DIR / VENDOR
    script = WEB_DIR / "scripts" / "vendor.mjs"
    if not vendor.is_dir() or vendor.stat().st_mtime < max(modules.stat().st_mtime, script.stat().st_mtime):
        _npm(["run", "build"], say)
    return vendor


def read_manifest(exports: Path) -> dict:
    from ..export.check import read_export_manifest  # the structure checked: listed files stay inside ``exports``

    path = exports / MANIFEST
    if not path.is_file():
        raise InputError(f"{exports} has no {MANIFEST}: export models with `python -m celeblook export onnx --out {exports}`")
    manifest = read_export_manifest(exports)
    constants = manifest.get("constants", {})
    missing = [k for k in ("w_avg", "clip") if k not in constants]
    if missing:
        raise InputError(f"{path} lacks the constant(s) {', '.join(missing)} the page needs: re-export with a current "
                         "`python -m celeblook export onnx`")
    return manifest


def copy_models(exports: Path, out: Path, progress: Progress | None = None) -> dict:
    """Copy an export directory's files (sha256-checked) and manifest into ``out``; returns the manifest."""
    say = progress or (lambda _msg: None)
    manifest = read_manifest(exports)
    out.mkdir(parents=True, exist_ok=True)
    for entry in manifest["files"]:
        src = exports / entry["file"]
        if not src.is_file():
            raise WeightsError(f"{src} is listed in {exports / MANIFEST} but missing: re-run the export")
        if sha256_file(src) != entry["sha256"]:
            raise WeightsError(f"{src} does not match its sha256 in the manifest: re-run the export")
        shutil.copy2(src, out / entry["file"])
        say(f"copied {entry['file']} ({entry['bytes'] / 2**20:.1f} MB)")
    shutil.copy2(exports / MANIFEST, out / MANIFEST)
    return manifest


def bank_prompts() -> list[str]:
    """The prompts whose embeddings ship with the page: the edit source, the examples, the edit prompt bank."""
    from ..data import load_prompts
    from ..text import DEFAULT_SOURCE

    return list(dict.fromkeys([DEFAULT_SOURCE, *EXAMPLE_PROMPTS, *load_prompts()]))


def write_prompt_bank(models: Path, out: Path, progress: Progress | None = None) -> dict | None:
    """The bank's unit text embeddings from the fp32 text encoder, stored as fp16 in ``out``; its site.json entry.

    None (and a note) when the export has no text encoder."""
    from ..runtime.ort import OrtEngine

    say = progress or (lambda _msg: None)
    backend = OrtEngine(models, threads=1, text_int8=False)
    if not backend.has_graph("text_encoder"):
        say("note: no text_encoder.onnx in the export, so the page has no prompt bank (and no text features)")
        return None
    prompts = bank_prompts()
    tokens, _ = default_tokenizer()(prompts)  # ViT-L-14's, as ported in src/tokenizer.js; bank prompts are short
    embeddings = backend.embed_tokens(tokens).astype(np.float16)
    data = embeddings.tobytes()
    if len(data) > PROMPTS_MAX_BYTES:
        raise InputError(f"the prompt bank's embeddings take {len(data)} bytes, over the {PROMPTS_MAX_BYTES}-byte limit")
    path = out / PROMPTS_FILE
    path.write_bytes(data)
    say(f"prompt bank: {len(prompts)} prompts, {len(data) / 2**10:.0f} KB (fp16)")
    return {"file": PROMPTS_FILE, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "dtype": "float16",
            "dim": int(embeddings.shape[1]), "prompts": prompts, "examples": list(EXAMPLE_PROMPTS)}


def align_entry(vendor: Path) -> dict:
    """site.json's alignment model: face-api's files with sha256 (cached and checked by the page like the ONNX files)."""
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/@vladmandic/face-api"]["version"]
    files = sorted((vendor / ALIGN_MODEL).iterdir())
    return {"package": f"@vladmandic/face-api {version}", "licence": "MIT",
            "models": "SSD MobileNet v1 face detector, 68-point face landmark net",
            "files": [{"file": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in files]}


# the Pipeline verbs the page mirrors (web/src/pipeline.js): their argument defaults go to site.json
PAGE_VERBS = ("random_faces", "invert", "text_to_face", "edit", "sweep", "morph")


def _defaults(function: Callable) -> dict:
    """A function's JSON-able argument defaults (numbers, text, tuples of them), by Python name."""
    found = {}
    for name, parameter in inspect.signature(function).parameters.items():
        value = parameter.default
        if isinstance(value, (int, float, str, tuple)) and not isinstance(value, bool):
            found[name] = list(value) if isinstance(value, tuple) else value
    return found


def app_limits() -> dict:
    """The app's limits, defaults and constants the page applies too, read from the Python modules that define
    them, so that both treat a request alike: every ``Limits`` range, the Pipeline verbs' argument defaults, the
    edit constants (C_max, target similarity, the score size, the oracle's bisection), the text variation and
    sources, the photo sides, the aligned crop's size and the GIF frame time."""
    from ..limits import C_MAX, TARGET_SIMILARITY, Limits, Range
    from ..media import encode_gif
    from ..models import GeneratorConfig
    from ..photo import MAX_SIDE, MIN_SIDE
    from ..pipeline import MORPH_MODES, SCORE_SIZE, TEXT_VARIATION, Pipeline, align_photo
    from ..strength_oracle import oracle_strength
    from ..text import DEFAULT_SOURCE, PROMPT_MAX_CHARS, SOURCE_FROM_IMAGE

    limits = Limits.of(GeneratorConfig())
    ranges = {name: getattr(limits, name) for name in dir(limits) if isinstance(getattr(limits, name), Range)}
    oracle = _defaults(oracle_strength)
    return {"ranges": {name: {"name": r.name, "low": r.low, "high": r.high, "integer": r.integer} for name, r in ranges.items()},
            "sizes": list(limits.sizes), "n_slots": limits.n_slots, "gif_sizes": list(limits.gif_size.options),
            "photo_max_side": MAX_SIDE, "photo_min_side": MIN_SIDE, "crop_size": _defaults(align_photo)["size"],
            "c_max": C_MAX, "target_similarity": TARGET_SIMILARITY, "score_size": SCORE_SIZE,
            "oracle": {"tol": oracle["tol"], "max_iter": oracle["max_iter"]},
            "text_variation": TEXT_VARIATION, "default_source": DEFAULT_SOURCE, "source_from_image": SOURCE_FROM_IMAGE,
            "prompt_max_chars": PROMPT_MAX_CHARS, "morph_modes": list(MORPH_MODES),
            "gif_frame_ms": _defaults(encode_gif)["duration_ms"],
            "defaults": {verb: _defaults(getattr(Pipeline, verb)) for verb in PAGE_VERBS}}


def check_models_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"--models-url must be an http(s) URL such as https://huggingface.co/OWNER/NAME/resolve/main/, got {url!r}")
    return url if url.endswith("/") else url + "/"


def space_readme(manifest: dict, models_url: str | None, models_dir: Path | None, out: Path) -> str:
    """README.md of a static Space: front matter (sdk static, app_file, cross-origin isolation) and how to publish."""
    headers = "\n".join(f"  {k}: {v}" for k, v in SPACE_HEADERS.items())
    preset = manifest["constants"].get("preset", "?")
    trained = manifest["constants"].get("trained", True)
    upload_models = ""
    if models_url:
        upload_models = (f"hf repos create OWNER/MODELS --repo-type model --exist-ok\n"
                         f"hf upload OWNER/MODELS {models_dir} . --repo-type model\n")
    return f"""---
title: CelebrityLook
emoji: 🙂
colorFrom: indigo
colorTo: pink
sdk: static
app_file: index.html
pinned: false
short_description: Edit faces with text, on your own device
custom_headers:
{headers}
---

# CelebrityLook, on your device

A static page: photo alignment, inversion, text to face, text edits with manual and learned strength, C-sweep
and morph GIFs all run in the visitor's browser (onnxruntime-web: WebGPU on a hardware GPU, wasm otherwise).
Nothing is uploaded. Models: preset `{preset}`{'' if trained else ' (untrained random weights: faces are patterns)'};
{f'fetched from {models_url}' if models_url else 'served from this Space'} and kept by the browser after the first visit.

## Publish (static Spaces are free)

```bash
pip install huggingface_hub && hf auth login
{upload_models}hf repos create OWNER/SPACE --repo-type space --space-sdk static --exist-ok
hf upload OWNER/SPACE {out} . --repo-type space
```
`custom_headers` above make the page cross-origin isolated (multi-threaded wasm); a model host must then send
CORS headers (Hugging Face `resolve/main` URLs do). Preview locally with the same headers:
`python -m celeblook web serve {out}`.

Licences: the page's runtime is onnxruntime-web (MIT), gifenc (MIT), face-api (MIT, with its detector and
landmark models), TensorFlow.js wasm kernels (Apache-2.0); the tokenizer vocabulary is OpenAI CLIP's (MIT, as
packaged by open_clip).
The models inherit the licences of the weights they were made from (see the project's README).
"""


def build_site(out: str | Path, *, exports: str | Path | None = None, preset: str | None = None, space: bool = False,
               models_url: str | None = None, progress: Progress | None = None) -> Path:
    """Write the site into ``out`` (emptied first when it is a previous build); returns ``out``.

    ``space``: also README.md for a static Hugging Face Space. ``models_url``: the page fetches the ONNX files
    from there (CORS); they are written to ``<out>-models/`` for upload instead of into the site.
    """
    say = progress or (lambda _msg: None)
    out = Path(out)
    models_url = check_models_url(models_url) if models_url else None
    models_dir = out.with_name(out.name + "-models") if models_url else out / "models"
    # only directories a build wrote are replaced: a site (site.json; index.html before it) and its models folder
    for directory, mark in ((out, (SITE_CONFIG, "index.html")), (models_dir, (MANIFEST,))):
        if directory.exists() and any(directory.iterdir()) and not any((directory / m).is_file() for m in mark):
            raise InputError(f"{directory} exists and is not a previous site build: choose an empty or new directory")
    if exports is not None and any(Path(exports).resolve().is_relative_to(d.resolve()) for d in (out, models_dir)):
        raise InputError(f"--exports {exports} is inside {out} or {models_dir}, which a build replaces: move it first")
    vendor = ensure_vendor(say)
    for directory in {out, models_dir}:
        if directory.exists():
            shutil.rmtree(directory)
    out.mkdir(parents=True)
    for name in PAGE:
        src = WEB_DIR / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, out / name)
    shutil.copytree(vendor, out / VENDOR)
    shutil.copy2(VOCAB_FILE, out / VENDOR / VOCAB)
    (out / VENDOR / ENTITIES).write_text(json.dumps(html.entities.html5, ensure_ascii=False))
    if exports is not None:
        copy_models(Path(exports), models_dir, say)
    else:
        from ..export.onnx import export_preset
        from ..presets import get_preset

        chosen = get_preset(preset)
        say(f"exporting the {chosen.name} preset's models (fp32 + fp16)")
        export_preset(chosen, models_dir, fp16=True, progress=say)
    manifest = read_manifest(models_dir)
    local_models = out / "models"  # the manifest (sha256 of every file) and the prompt bank stay with the page
    local_models.mkdir(exist_ok=True)
    if models_url:
        shutil.copy2(models_dir / MANIFEST, local_models / MANIFEST)
    exported = {entry["model"] for entry in manifest["files"]}
    photo = manifest["constants"].get("photo_encoder")
    if photo and photo not in exported:
        say(f"note: photos go through {photo}.onnx, which this export lacks, so the page turns photo inversion off")
    config = {"format": SITE_FORMAT, "models_url": models_url or "models/",
              "prompts": write_prompt_bank(models_dir, local_models, say), "align": align_entry(out / VENDOR),
              "limits": app_limits()}
    (out / SITE_CONFIG).write_text(json.dumps(config, indent=1, ensure_ascii=False))
    if space:
        (out / "README.md").write_text(space_readme(manifest, models_url, models_dir, out), encoding="utf-8")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    say(f"site written to {out} ({total / 2**20:.1f} MB in all)" + (f"; models for {models_url} in {models_dir}" if models_url else ""))
    return out
