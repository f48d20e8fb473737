"""Assemble the static site: the page (``web/``), its runtime (pinned by npm, copied by ``npm run build``),
CLIP's BPE vocabulary for the JavaScript tokenizer, the exported ONNX models and the prompt bank.

    SITE/index.html, src/*.js, src/style.css     the page (src/worker.js runs the models)
    SITE/sw.js                                   the service worker (the page offline)
    SITE/site.json                               where the models are, the prompt bank, the alignment model
    SITE/vendor/ort/, vendor/gifenc/             onnxruntime-web (MIT) and gifenc (MIT): no CDN
    SITE/vendor/mediabunny/                      mediabunny (MPL-2.0): MP4 / WebM muxing of WebCodecs output
    SITE/vendor/face-api/ (+ model/)             face-api (MIT): SSD face detector + 68-point landmarks
    SITE/vendor/face-api/identity/               face-api's face recognition net (fetched only for identity distances)
    SITE/vendor/tfjs-wasm/                       TensorFlow.js wasm kernels for face-api (Apache-2.0)
    SITE/vendor/bpe_simple_vocab_16e6.txt.gz     CLIP's merges file (celeblook/data, MIT); html5_entities.json (Python's table)
    SITE/models/manifest.json (+ *.onnx)         one export directory (``python -m celeblook export onnx``)
    SITE/models/prompts_fp16.bin                 the curated prompts' text embeddings (fp16): no text encoder needed
    SITE/.celeblook-build                        what the build wrote: only such a folder is ever replaced by a build

Models come from an existing export directory (``exports``; plain files only, never symbolic links, every
file's sha256 checked against its manifest) or are exported here from a preset, fp32 + fp16 (the page picks
fp16 on WebGPU with shader-f16). With ``space`` the folder is also a static Hugging Face Space (README.md
front matter); with ``models_url`` the ONNX files go to a separate folder for a model repository and the page
fetches them from that URL. A build replaces only a folder a build made (see ``build_site``).
"""

from __future__ import annotations

import contextlib
import hashlib
import html.entities
import inspect
import json
import shutil
import stat
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..data import VOCAB_FILE
from ..errors import CelebError, InputError, WeightsError
from ..files import sha256_file
from ..remedy import command
from ..text.tokenizer import default_tokenizer
from .folders import make_dirs, open_regular, put_in_place, replaceable, write_mark
from .space import check_models_url, space_readme

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PAGE = ("index.html", "sw.js", "src")  # sw.js at the root: a service worker controls only what is under it
VENDOR = "vendor"
VOCAB = VOCAB_FILE.name  # the page fetches vendor/<this name>
ENTITIES = "html5_entities.json"
MANIFEST = "manifest.json"
SITE_CONFIG = "site.json"
SITE_FORMAT = "celeblook-site/1"
PROMPTS_FILE = "prompts_fp16.bin"
PROMPTS_MAX_BYTES = 2**20  # the curated bank must stay a small first download
ALIGN_MODEL = "face-api/model"
IDENTITY_MODEL = "face-api/identity"
# what the page suggests (the Gradio app's text-to-face examples, the page's defaults) besides the edit bank
EXAMPLE_PROMPTS = ("a smiling woman with red curly hair", "an old man with a grey beard and glasses",
                   "a young man with a mohawk", "a person with blonde hair")
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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: object, length: int | None = None) -> bool:
    return (isinstance(value, list) and bool(value) and (length is None or len(value) == length)
            and all(_is_number(x) for x in value))


# what the page reads from an export manifest's constants (web/src/engine.js, app.js): name -> (required, valid)
PAGE_CONSTANTS: dict[str, tuple[bool, Callable[[object], bool]]] = {
    "w_avg": (True, _numbers),
    "clip": (True, lambda c: isinstance(c, dict) and _numbers(c.get("mean"), 3) and _numbers(c.get("std"), 3)
             and isinstance(c.get("size", 224), int)),
    "c_max": (False, lambda v: _is_number(v) and v > 0),
    "trained": (False, lambda v: isinstance(v, bool)),
    **{name: (False, lambda v: isinstance(v, str)) for name in ("preset", "photo_encoder", "mapper_encoder")},
}


def _symlink_refused(path: Path, exports: Path) -> InputError:
    return InputError(f"{path} is a symbolic link: web build copies only plain files from an export folder "
                      f"(make a plain copy, e.g. `cp -rL {exports} COPY`, and build from that)")


def read_manifest(exports: Path) -> dict:
    """An export directory's manifest, checked for everything the page reads: structure, constants, .onnx files."""
    from ..export.check import read_export_manifest  # the structure checked: listed files stay inside ``exports``

    path = exports / MANIFEST
    if path.is_symlink():
        raise _symlink_refused(path, exports)
    if not path.is_file():
        raise InputError(f"{exports} has no {MANIFEST}: export models with `{command('export', 'onnx', '--out', exports)}`")
    manifest = read_export_manifest(exports)
    constants = manifest.get("constants", {})
    missing = [k for k, (required, _) in PAGE_CONSTANTS.items() if required and k not in constants]
    if missing:
        raise InputError(f"{path} lacks the constant(s) {', '.join(missing)} the page needs: re-export with a current "
                         f"`{command('export', 'onnx')}`")
    bad = [k for k, (_, valid) in PAGE_CONSTANTS.items() if k in constants and not valid(constants[k])]
    if bad:
        raise InputError(f"{path} has a malformed constant {bad[0]!r}: re-export with `{command('export', 'onnx')}`")
    odd = [e["file"] for e in manifest["files"] if not e["file"].endswith(".onnx")]
    if odd:
        raise InputError(f"{path} lists {odd[0]!r}: the page loads only .onnx files from an export")
    return manifest


def read_export(exports: Path) -> dict:
    """The manifest (``read_manifest``) and every listed file a regular file, never a symbolic link, of the listed
    size: all checked before anything is copied; returns the manifest."""
    manifest = read_manifest(exports)
    for entry in manifest["files"]:
        src = exports / entry["file"]
        try:
            info = src.lstat()
        except FileNotFoundError:
            raise WeightsError(f"{src} is listed in {exports / MANIFEST} but missing: re-run the export") from None
        if stat.S_ISLNK(info.st_mode):
            raise _symlink_refused(src, exports)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{src} is listed in {exports / MANIFEST} but is not a regular file")
        if info.st_size != entry["bytes"]:
            raise WeightsError(f"{src} has {info.st_size} bytes, its manifest says {entry['bytes']}: re-run the export")
    return manifest


def copy_models(exports: Path, manifest: dict, out: Path, progress: Progress | None = None) -> None:
    """Copy the files of an export directory checked by ``read_export`` (``manifest``) into ``out``, each read once,
    without following a link, and sha256-checked as it is copied; then the manifest. On failure ``out`` holds part
    of them: the caller removes it."""
    say = progress or (lambda _msg: None)
    out.mkdir(parents=True, exist_ok=True)
    for entry in manifest["files"]:
        digest = hashlib.sha256()
        with open_regular(exports / entry["file"]) as src, open(out / entry["file"], "wb") as dst:
            while block := src.read(1 << 20):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != entry["sha256"]:
            raise WeightsError(f"{exports / entry['file']} does not match its sha256 in the manifest: re-run the export")
        say(f"copied {entry['file']} ({entry['bytes'] / 2**20:.1f} MB)")
    # the manifest that was checked, not the file again: what the page reads is exactly what was validated
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))


def bank_prompts() -> list[str]:
    """The prompts whose embeddings ship with the page: the edit source, the examples, the edit prompt bank."""
    from ..data import load_prompts
    from ..text.prompts import DEFAULT_SOURCE

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


def face_api_entry(folder: Path, models: str) -> dict:
    """site.json's entry for a folder of face-api's models: its files with sha256 (cached and checked by the page
    like the ONNX files)."""
    lock = json.loads((WEB_DIR / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/@vladmandic/face-api"]["version"]
    return {"package": f"@vladmandic/face-api {version}", "licence": "MIT", "models": models,
            "files": [{"file": f.name, "sha256": sha256_file(f), "bytes": f.stat().st_size} for f in sorted(folder.iterdir())]}


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
    them, so that both treat a request alike: every ``Limits`` range, the verbs' requests (each field's label, help,
    default and range: ``requests``; the defaults alone, by verb: ``defaults``, which the page's pipeline reads), the
    edit constants (C_max, target similarity, the score size, the oracle's bisection), the text variation and
    sources, the photo sides, the aligned crop's size, the GIF frame time and the identity threshold."""
    from ..limits import C_MAX, CLIP_FORMATS, TARGET_SIMILARITY, Limits, Range
    from ..media import encode_gif
    from ..models import GeneratorConfig
    from ..photo.identity import SAME_PERSON
    from ..photo.load import MAX_SIDE, MIN_SIDE
    from ..pipeline import MORPH_MODES, REQUESTS, SCORE_SIZE, TEXT_VARIATION, align_photo
    from ..strength_oracle import oracle_strength
    from ..text.prompts import DEFAULT_SOURCE, PROMPT_MAX_CHARS, SOURCE_FROM_IMAGE

    limits = Limits.of(GeneratorConfig())
    ranges = {name: getattr(limits, name) for name in dir(limits) if isinstance(getattr(limits, name), Range)}
    oracle = _defaults(oracle_strength)
    requests = {verb: request.schema(limits) for verb, request in REQUESTS.items()}
    return {"ranges": {name: {"name": r.name, "low": r.low, "high": r.high, "integer": r.integer} for name, r in ranges.items()},
            "sizes": list(limits.sizes), "n_slots": limits.n_slots, "gif_sizes": list(limits.gif_size.options),
            "photo_max_side": MAX_SIDE, "photo_min_side": MIN_SIDE, "crop_size": _defaults(align_photo)["size"],
            "c_max": C_MAX, "target_similarity": TARGET_SIMILARITY, "score_size": SCORE_SIZE,
            "oracle": {"tol": oracle["tol"], "max_iter": oracle["max_iter"]},
            "text_variation": TEXT_VARIATION, "default_source": DEFAULT_SOURCE, "source_from_image": SOURCE_FROM_IMAGE,
            "prompt_max_chars": PROMPT_MAX_CHARS, "morph_modes": list(MORPH_MODES),
            "gif_frame_ms": _defaults(encode_gif)["duration_ms"], "same_person": SAME_PERSON,
            "clip_formats": list(CLIP_FORMATS), "requests": requests,
            "defaults": {verb: {name: f["default"] for name, f in fields.items() if "default" in f} for verb, fields in requests.items()}}


def _write_site(site: Path, models: Path, manifest: dict, vendor: Path, *, space: bool, models_url: str | None,
                out: Path, models_dir: Path, say: Progress) -> None:
    """Everything but the models (already in ``models``) into the staging folder ``site``; ``out`` and
    ``models_dir`` are where they will be, for the Space README."""
    for name in PAGE:
        src = WEB_DIR / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, site / name)
    shutil.copytree(vendor, site / VENDOR)
    shutil.copy2(VOCAB_FILE, site / VENDOR / VOCAB)
    (site / VENDOR / ENTITIES).write_text(json.dumps(html.entities.html5, ensure_ascii=False))
    local_models = site / "models"  # the manifest (sha256 of every file) and the prompt bank stay with the page
    local_models.mkdir(exist_ok=True)
    if models_url:
        shutil.copy2(models / MANIFEST, local_models / MANIFEST)
    exported = {entry["model"] for entry in manifest["files"]}
    photo = manifest["constants"].get("photo_encoder")
    if photo and photo not in exported:
        say(f"note: photos go through {photo}.onnx, which this export lacks, so the page turns photo inversion off")
    vendored = site / VENDOR
    config = {"format": SITE_FORMAT, "models_url": models_url or "models/",
              "prompts": write_prompt_bank(models, local_models, say),
              "align": face_api_entry(vendored / ALIGN_MODEL, "SSD MobileNet v1 face detector, 68-point face landmark net"),
              "identity": face_api_entry(vendored / IDENTITY_MODEL, "face recognition net (a port of dlib's ResNet descriptor)"),
              "limits": app_limits()}
    (site / SITE_CONFIG).write_text(json.dumps(config, indent=1, ensure_ascii=False))
    if space:
        (site / "README.md").write_text(space_readme(manifest, models_url, models_dir, out), encoding="utf-8")


def build_site(out: str | Path, *, exports: str | Path | None = None, preset: str | None = None, space: bool = False,
               models_url: str | None = None, progress: Progress | None = None) -> Path:
    """Write the site into ``out``; returns ``out``.

    ``out`` must be new, empty or a previous build that holds only what that build wrote (its BUILD_MARK says);
    anything else is refused, so nothing else is ever deleted. Everything is checked first, then the site is
    built in a hidden sibling folder and renamed into place once complete: a failed build leaves all as it was.
    ``space``: also README.md for a static Hugging Face Space. ``models_url``: the page fetches the ONNX files
    from there (CORS); they are written to ``<out>-models/`` (same rules) for upload instead of into the site.
    """
    say = progress or (lambda _msg: None)
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise InputError(f"the site folder must have a name, such as site (got {str(out)!r})")
    models_url = check_models_url(models_url) if models_url else None
    models_dir = out.with_name(out.name + "-models") if models_url else out / "models"
    targets = [(models_dir, "models")] if models_url else []
    targets.append((out, "site"))  # the models first when both: the site refers to them
    for folder, kind in targets:
        replaceable(folder, kind)
    if exports is not None:
        exports = Path(exports)
        if any(exports.resolve().is_relative_to(d.resolve()) for d in (out, models_dir)):
            raise InputError(f"--exports {exports} is inside {out} or {models_dir}, which a build replaces: move it first")
        manifest = read_export(exports)  # before anything is written
    else:
        from ..presets import get_preset

        chosen = get_preset(preset)
    vendor = ensure_vendor(say)
    tag = uuid.uuid4().hex[:8]
    staging = {folder: folder.with_name(f".{folder.name}.build-{tag}") for folder, _ in targets}
    parents: list[Path] = []
    staged: list[Path] = []
    try:
        parents = make_dirs(out.parent)
        for folder in staging.values():
            folder.mkdir()  # fails on a name that exists: only folders made here are removed on failure
            staged.append(folder)
        models = staging.get(models_dir, staging[out] / "models")
        if exports is not None:
            copy_models(exports, manifest, models, say)
        else:
            from ..export.preset import export_preset

            say(f"exporting the {chosen.name} preset's models (fp32 + fp16)")
            export_preset(chosen, models, fp16=True, progress=say)
            manifest = read_manifest(models)
        _write_site(staging[out], models, manifest, vendor, space=space, models_url=models_url, out=out, models_dir=models_dir, say=say)
        for folder, kind in targets:
            write_mark(staging[folder], kind)
        for folder, kind in targets:
            put_in_place(staging[folder], folder, kind)
    except BaseException as err:
        for folder in staged:
            shutil.rmtree(folder, ignore_errors=True)  # gone already once it was put in place
        for folder in reversed(parents):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only while empty
        if isinstance(err, OSError):
            raise CelebError(f"web build could not write {err.filename or out}: {err.strerror or err}") from None
        raise
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    say(f"site written to {out} ({total / 2**20:.1f} MB in all)" + (f"; models for {models_url} in {models_dir}" if models_url else ""))
    return out
