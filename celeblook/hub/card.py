"""The model card (README.md) of a heads repository: what the heads are, how they were trained, how they score,
and the licences they inherit."""

from __future__ import annotations

import json
from pathlib import Path

from ..presets import Preset
from ..remedy import command


def read_json(path: Path) -> dict:
    """A JSON file of a ``train all`` folder; {} when absent or unreadable (the card says '?' for what it lacks)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_card(repo: str, preset: Preset, source: Path, index: dict) -> str:
    """README.md of a heads repository: what the heads are, how they were trained, how they score, licences."""
    student = f"student_{preset.student}"
    mapper = read_json(source / "mapper.json").get("provenance", {})
    strength = read_json(source / "strength.json")
    refiner = read_json(source / "refiner.json")
    encoder = read_json(source / f"{student}.json").get("provenance", {})
    evaluation = read_json(source / "eval.json")
    stages = read_json(source / "train_all.json").get("stages", {})
    untrained = "" if preset.trained else (
        f"\n> **Preset `{preset.name}`: trained in a world of seeded random models** (generator and CLIP are random"
        f"{', at their real size: a rehearsal of the real run' if preset.rehearsal else ''}), "
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
        f"`{preset.name}`: the mapper *f* (CLIP embedding -> W+), the strength head (edit strength C), the "
        f"distilled `{preset.student}` student image encoder{' and the refiner R (learned inversion steps)' if refiner else ''}, "
        "as safetensors with JSON sidecars and as ONNX.",
        "", "```bash", f"{command('weights', 'download', '--heads', repo)}   # or CELEBLOOK_HEADS_REPO={repo}",
        "```", "", "## Training", "",
        "Trained on generated faces only (no dataset): seeded latents of the preset's generator, rendered and "
        "embedded by its CLIP image tower.", "",
        "| piece | what it read | steps | batch | time |", "|---|---|---|---|---|",
    ]
    for name, config, what in (
        ("mapper", mapper.get("train_config", {}), f"{mapper.get('encoder', '?')} embeddings of generated faces"),
        ("strength", strength.get("training", {}), "the mapper's text directions, prompt bank training split"),
        ("encoder", encoder.get("train_config", {}), f"distilled from the CLIP image tower ({encoder.get('teacher', '?')})"),
        *([("refiner", refiner.get("training", {}), "generated faces and the mapper's inversions of them")]
          if refiner else []),
    ):
        seconds = stages.get(name, {}).get("seconds")
        lines.append(f"| {name} | {what} | {config.get('steps', '?')} | {config.get('batch', '?')} | "
                     f"{f'{seconds / 60:.1f} min' if seconds else '?'} |")
    lines += ["", "## Evaluation", "", "Held-out generated faces and held-out prompts: each job's own figures, and "
              f"under `evaluation` those of `{command('eval')}` run on these heads.", "",
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
