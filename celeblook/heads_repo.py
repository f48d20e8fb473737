"""Trained heads shared through the Hub: ``weights publish`` and ``weights download --heads``.

A heads repository holds one preset's trained pieces, as ``train all`` leaves them in its output folder:

    celeblook-heads.json                      index: preset, and every file's sha256 and size
    README.md                                 model card: training facts, eval numbers, licences
    mapper.safetensors (+ .json)              the mapper f           -> weights/<preset>/
    strength.safetensors (+ .json)            the strength head      -> weights/<preset>/
    student_<variant>.safetensors (+ .json)   the student encoder    -> weights/ (untrained presets: weights/<preset>/)
    onnx/manifest.json, onnx/*.onnx           their ONNX exports     -> weights/<preset>/onnx/

Downloads go through celeblook.hub (huggingface_hub's cache) at one commit, are checked against the
index's sha256 and size, and are linked into the places above, where the pipeline reads them. The index
only supplies hashes: where a file goes is decided here, never by the repository.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from .errors import InputError, WeightsError
from .files import weights_dir
from .hub import ByteProgress
from .presets import Preset

INDEX = "celeblook-heads.json"
CARD = "README.md"
HEADS_ENV = "CELEBLOOK_HEADS_REPO"
FORMAT = 1
ONNX_NAME = re.compile(r"^onnx/[A-Za-z0-9_.-]+\.(onnx|json)$")
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def weight_names(preset: Preset) -> list[str]:
    """The head files of a preset, with their sidecars, as named in a repository and in ``train all``'s folder."""
    student = f"student_{preset.student}"
    return [f"{stem}.{ext}" for stem in ("mapper", "strength", student) for ext in ("safetensors", "json")]


def place(preset: Preset, repo_path: str) -> str:
    """Where a repository file goes, relative to the weights dir; InputError for anything unexpected."""
    if repo_path in weight_names(preset) and repo_path.startswith("student_") and preset.trained:
        return repo_path  # where the pipeline reads a trained student (celeblook.models.student.student_path)
    # an untrained preset's student stays in its folder: the file name is the timm variant's, shared with ffhq
    if repo_path in weight_names(preset) or ONNX_NAME.match(repo_path):
        return f"{preset.name}/{repo_path}"
    raise InputError(f"unexpected file {repo_path!r} in a heads repository")


def check_repo_id(repo: str) -> str:
    if not REPO_ID.match(repo or ""):
        raise InputError(f"a Hub repository is OWNER/NAME, got {repo!r}")
    return repo


# ---------------------------------------------------------------------------------------------------
# publish


def collect(preset: Preset, source: Path) -> list[tuple[str, Path]]:
    """(path in the repository, local file) for everything published from ``source`` (a ``train all`` folder)."""
    source = Path(source)
    files = [(name, source / name) for name in weight_names(preset)]
    onnx = source / "onnx"
    if onnx.is_dir():
        files += [(f"onnx/{p.name}", p) for p in sorted(onnx.iterdir()) if ONNX_NAME.match(f"onnx/{p.name}")]
    missing = [name for name, path in files if not path.is_file()]
    if not (onnx / "manifest.json").is_file():
        missing.append("onnx/manifest.json (the ONNX exports)")
    if missing:
        raise WeightsError(f"{source} lacks {', '.join(missing)}; make them with "
                           f"`python -m celeblook train all --preset {preset.name} --out {source}`")
    return files


def build_index(preset: Preset, files: list[tuple[str, Path]]) -> dict:
    from .files import sha256_file

    return {
        "format": FORMAT, "preset": preset.name, "trained": preset.trained,
        "published": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": {name: {"sha256": sha256_file(path), "size": path.stat().st_size} for name, path in files},
    }


def publish(repo: str, preset: Preset, source: Path, private: bool = False, log: Callable[[str], None] = print) -> str:
    """Upload ``source``'s heads, their ONNX exports, the index and a model card to ``repo`` in one commit."""
    from . import hub

    check_repo_id(repo)
    files = collect(preset, Path(source))
    index = build_index(preset, files)
    card = model_card(repo, preset, Path(source), index)
    uploads = [*files, (INDEX, json.dumps(index, indent=1).encode()), (CARD, card.encode())]
    total = sum(entry["size"] for entry in index["files"].values())
    log(f"publishing {len(files)} files ({total / 2**20:.1f} MB) to {repo} on {hub.endpoint()}")
    commit = hub.upload(repo, uploads, f"celeblook heads for preset {preset.name}", private)
    log(f"published {repo} at commit {commit}; fetch with `python -m celeblook weights download --heads {repo}`")
    return commit


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_card(repo: str, preset: Preset, source: Path, index: dict) -> str:
    """README.md of a heads repository: what the heads are, how they were trained, how they score, licences."""
    student = f"student_{preset.student}"
    mapper = _read_json(source / "mapper.json").get("provenance", {})
    strength = _read_json(source / "strength.json")
    encoder = _read_json(source / f"{student}.json").get("provenance", {})
    evaluation = _read_json(source / "eval.json")
    stages = _read_json(source / "train_all.json").get("stages", {})
    untrained = "" if preset.trained else (
        "\n> **Preset `tiny`: trained in a world of seeded random models** (generator and CLIP are random), "
        "so these heads check the training and the plumbing; they do not make faces.\n")

    def number(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    def metric_rows(name: str, metrics: dict) -> list[str]:
        """One row per number; nested sections (eval.json's "evaluation": inversion, edit, ...) by full name."""
        rows = []
        for key, value in metrics.items():
            if isinstance(value, dict):
                rows += metric_rows(f"{name} {key}", value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append(f"| {name} {key} | {number(value)} |")
        return rows

    lines = [
        "---", "license: other", "license_name: inherited", "library_name: celeblook",
        "tags: [celeblook, stylegan, mobilestylegan, clip, face-editing]", "---", "",
        f"# CelebrityLook heads for preset `{preset.name}`", untrained,
        "The trained pieces of CelebrityLook (face inversion and text edits on MobileStyleGAN + CLIP) for its preset "
        f"`{preset.name}`: the mapper *f* (CLIP embedding -> W+), the strength head (edit strength C) and the "
        f"distilled `{preset.student}` student image encoder, as safetensors with JSON sidecars and as ONNX.",
        "", "```bash", f"python -m celeblook weights download --heads {repo}   # or CELEBLOOK_HEADS_REPO={repo}",
        "```", "", "## Training", "",
        "Trained on generated faces only (no dataset): seeded latents of the preset's generator, rendered and "
        "embedded by its CLIP image tower.", "",
        "| piece | what it read | steps | batch | time |", "|---|---|---|---|---|",
    ]
    for name, config, what in (
        ("mapper", mapper.get("train_config", {}), f"{mapper.get('encoder', '?')} embeddings of generated faces"),
        ("strength", strength.get("training", {}), "the mapper's text directions, prompt bank training split"),
        ("encoder", encoder.get("train_config", {}), f"distilled from the CLIP image tower ({encoder.get('teacher', '?')})"),
    ):
        seconds = stages.get(name, {}).get("seconds")
        lines.append(f"| {name} | {what} | {config.get('steps', '?')} | {config.get('batch', '?')} | "
                     f"{f'{seconds / 60:.1f} min' if seconds else '?'} |")
    lines += ["", "## Evaluation", "", "Held-out generated faces and held-out prompts: each job's own figures, and "
              "under `evaluation` those of `python -m celeblook eval` run on these heads.", "",
              "| metric | value |", "|---|---|"]
    sections = {k: v for k, v in evaluation.items() if isinstance(v, dict)} or {  # heads trained one by one
        "mapper": {k: v for k, v in mapper.items() if k.startswith("wplus_mse")}}
    for section, metrics in sections.items():
        lines += metric_rows(section, metrics)
    lines += [
        "", "## Licences", "",
        "These heads are derived from the models they were trained with; their terms follow those (check them "
        "before any use beyond research):",
        "- **MobileStyleGAN** (generator; github.com/bes-dev/MobileStyleGAN.pytorch): no licence is stated for its "
        "weights; its code ships LICENSE-NVIDIA for the StyleGAN2-derived parts (NVIDIA Source Code License, "
        "non-commercial).",
        "- **OpenCLIP ViT-L/14, LAION-2B** (`laion/CLIP-ViT-L-14-laion2B-s32B-b82K`): MIT.",
        "- **EfficientFormer-L1** ImageNet initialisation of the student (`timm/efficientformer_l1.snap_dist_in1k`): "
        "Apache-2.0.",
        "",
        "## Files", "", "| file | bytes | sha256 |", "|---|---|---|",
    ]
    lines += [f"| {name} | {entry['size']:,} | `{entry['sha256']}` |" for name, entry in index["files"].items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# download


def heads_repo(repo: str | None) -> str:
    repo = repo or os.environ.get(HEADS_ENV, "")
    if not repo:
        raise InputError(f"name the heads repository: --heads OWNER/NAME or {HEADS_ENV}=OWNER/NAME")
    return check_repo_id(repo)


def download_heads(
    repo: str | None, preset: Preset, revision: str | None = None, root: Path | None = None,
    log: Callable[[str], None] = print, report: ByteProgress | None = None, progress: bool = True,
    cache_only: bool = False,
) -> list[Path]:
    """Fetch a heads repository's files at one commit, verified against its index, into the weights dir."""
    from . import hub
    from .weights import file_hashes, install_verified, load_manifest, record_hashes

    repo = heads_repo(repo)
    root = root or weights_dir()
    index_path = hub.fetch(repo, INDEX, revision, label=f"{repo} index", terminal=progress, cache_only=cache_only)
    commit = index_path.parent.name  # .../snapshots/<commit>/celeblook-heads.json: the rest comes from there too
    try:
        index = json.loads(index_path.read_text())
        entries = index["files"]
    except (ValueError, KeyError, TypeError):
        raise WeightsError(f"{repo} has no readable {INDEX}: not a celeblook heads repository") from None
    if index.get("preset") != preset.name:
        raise WeightsError(f"{repo} holds heads for preset {index.get('preset')!r}, not {preset.name!r}; "
                           f"choose the preset with --preset {index.get('preset')}")
    wanted = [name for name in weight_names(preset) if name not in entries]
    if wanted:
        raise WeightsError(f"{repo} lacks {', '.join(wanted)}; it cannot be used as preset {preset.name!r}'s heads")
    targets = {name: root / place(preset, name) for name in entries}  # every name checked before any download
    for name, entry in entries.items():
        dest = targets[name]
        # a head already in place is checked through the weights dir's hash cache, not read again
        if dest.is_file() and dest.stat().st_size == entry["size"] and file_hashes(dest, root)["sha256"] == entry["sha256"]:
            continue
        cached = hub.fetch(repo, name, commit, label=name, report=report, terminal=progress, cache_only=cache_only)
        install_verified(f"{name} from {repo}", cached, dest, root, file_hashes(cached, root, progress), hub.forget,
                         size=entry["size"], sha256=entry["sha256"], whose="its index")
    listed = {f.name for f in load_manifest(root)}
    # manifest entries (ffhq's heads) get the hash they were verified against, in one write of the manifest
    verified = {target: (entries[name]["sha256"], entries[name]["size"])
                for name, dest in targets.items() if (target := dest.relative_to(root).as_posix()) in listed}
    if verified:
        record_hashes(verified, root)
    log(f"heads for preset {preset.name} from {repo} at {commit[:12]}: {len(targets)} files verified and in place")
    return list(targets.values())
