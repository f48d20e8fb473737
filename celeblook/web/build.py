"""Assemble the static site: the page (``web/``), onnxruntime-web and gifenc (pinned by npm, copied by
``npm run build``), open_clip's BPE vocabulary for the JavaScript tokenizer, and the exported ONNX models.

    SITE/index.html, src/*.js, src/style.css     the page
    SITE/vendor/ort/, vendor/gifenc/             runtime files (no CDN)
    SITE/vendor/bpe_simple_vocab_16e6.txt.gz     open_clip's merges file (MIT)
    SITE/models/*.onnx + manifest.json           one export directory (``python -m celeblook export onnx``)

Models come from an existing export directory (``exports``; every file's sha256 is checked against its
manifest) or are exported here from a preset, fp32 + fp16 (the page picks fp16 on WebGPU with shader-f16).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from ..errors import CelebError, InputError, WeightsError

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PAGE = ("index.html", "src")
VENDOR = "vendor"
VOCAB = "bpe_simple_vocab_16e6.txt.gz"
MANIFEST = "manifest.json"
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
    if not vendor.is_dir() or vendor.stat().st_mtime < modules.stat().st_mtime:
        _npm(["run", "build"], say)
    return vendor


def read_manifest(exports: Path) -> dict:
    path = exports / MANIFEST
    if not path.is_file():
        raise InputError(f"{exports} has no {MANIFEST}: export models with `python -m celeblook export onnx --out {exports}`")
    manifest = json.loads(path.read_text())
    constants = manifest.get("constants", {})
    missing = [k for k in ("w_avg", "clip") if k not in constants]
    if missing:
        raise InputError(f"{path} lacks the constant(s) {', '.join(missing)} the page needs: re-export with a current "
                         "`python -m celeblook export onnx`")
    return manifest


def copy_models(exports: Path, out: Path, progress: Progress | None = None) -> dict:
    """Copy an export directory's files (sha256-checked) and manifest into ``out``; returns the manifest."""
    from ..files import sha256_file

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


def build_site(out: str | Path, *, exports: str | Path | None = None, preset: str | None = None,
               progress: Progress | None = None) -> Path:
    """Write the site into ``out`` (emptied first when it is a previous build); returns ``out``."""
    import open_clip

    say = progress or (lambda _msg: None)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise InputError(f"{out} exists and is not a previous site build: choose an empty or new directory")
    if exports is not None and Path(exports).resolve().is_relative_to(out.resolve()):
        raise InputError(f"--exports {exports} is inside the site directory {out}, which a build replaces: move it first")
    vendor = ensure_vendor(say)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in PAGE:
        src = WEB_DIR / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, out / name)
    shutil.copytree(vendor, out / VENDOR)
    shutil.copy2(Path(open_clip.__file__).with_name(VOCAB), out / VENDOR / VOCAB)
    models = out / "models"
    if exports is not None:
        copy_models(Path(exports), models, say)
    else:
        from ..export.onnx import export_preset
        from ..presets import get_preset

        try:
            chosen = get_preset(preset)
        except ValueError as err:
            raise InputError(str(err)) from None
        say(f"exporting the {chosen.name} preset's models (fp32 + fp16)")
        export_preset(chosen, models, fp16=True, progress=say)
    manifest = read_manifest(models)
    exported = {entry["model"] for entry in manifest["files"]}
    if manifest["constants"].get("mapper_encoder") == "teacher" and "image_encoder_teacher" not in exported:
        say("note: the mapper reads the CLIP teacher's image space but there is no image_encoder_teacher.onnx, so the "
            "page turns photo inversion off (export with `export onnx --teacher`, or train the mapper on the student)")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    say(f"site written to {out} ({total / 2**20:.1f} MB in all)")
    return out
