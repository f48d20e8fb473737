"""``python -m celeblook eval``: how well a preset's trained pieces do their jobs, on generated faces.

    inversion   photo = G(w) of seeded latents; invert it (mapper only, then with refinement) and report
                cos(E_I(photo), E_I(G(w_hat))): the pipeline's clip_similarity
    edit        learned-C edits of those faces with held-out prompts: the text-score gain
                cos(E_I(edit), E_T(prompt)) - cos(E_I(face), E_T(prompt)) against the similarity loss
                1 - cos(E_I(face), E_I(edit))
    refiner     where the heads include one (refiner.safetensors): pixel and W+ MSE of the mapper's answer, of
                R after its iterations and of the refinement by optimisation on held-out generated faces
                (celeblook.training.refiner.evaluate_refiner, the figures of `train refiner`)
    strength    |similarity - target| of the learned C, the best fixed C and the bisection oracle on
                held-out (latent, prompt) pairs, with the generator calls each needs
                (celeblook.training.strength.evaluate_strength; the target is the one the preset's strength
                head is trained for)

Everything goes through celeblook.pipeline.Pipeline, so it measures what the app and CLI deliver. The heads
are the installed ones (``weights_dir()/<preset>``) or those in a given folder (a ``train all`` OUT, whose
student then serves as E_I). Trained presets need both heads (a WeightsError names the train commands);
``tiny`` uses seeded stand-ins where it has no heads and its results are labelled untrained: they check the
plumbing, not quality.

Held out from training: the faces come from a seed stream no training job draws from (FACES_SEED_OFFSET),
the edits use the prompt bank's held-out split, the strength pairs are the strength job's held-out pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from PIL import Image

from .errors import InputError, WeightsError
from .factory import load_models
from .files import weights_dir
from .media import to_uint8
from .pipeline import PhotoStart, Pipeline
from .presets import EvalConfig, Preset, RefinerTrainConfig, StrengthTrainConfig, get_preset
from .remedy import Missing, remedy

Progress = Callable[[float, str], None]
# the faces' z stream is seed + this: training draws from seed (strength, encoder, the mapper's centre) and
# seed * 1000 + 1 + rank (mapper), its held-out sets from seed + 999_983 and seed + 1_000_003
FACES_SEED_OFFSET = 2_000_500


def heads_folder(preset: Preset, heads: Path | None) -> Path:
    return Path(heads) if heads is not None else weights_dir() / preset.name


def require_heads(preset: Preset, heads: Path | None = None) -> None:
    """Trained presets: a WeightsError naming every missing head's train command, before loading anything."""
    if not preset.trained:
        return
    folder = heads_folder(preset, heads)
    missing = [Missing(part, str(folder / f"{part}.safetensors"), remedy(part, preset.name))
               for part in ("mapper", "strength") if not (folder / f"{part}.safetensors").exists()]
    if missing:
        raise WeightsError("eval needs the trained heads: " + "; ".join(map(str, missing)))


def load_pipeline(preset: Preset, heads: Path | None = None) -> Pipeline:
    """The installed heads as the app loads them; or the heads in ``heads`` (with the student beside them as E_I),
    in torch alone: the ONNX backend's graphs are exports of the installed heads."""
    if heads is None:
        return Pipeline.from_pretrained(preset)
    return Pipeline(load_models(preset, heads, backend="torch"))


def evaluate(preset: str | Preset | None = None, config: EvalConfig | None = None,
             progress: Progress | None = None, heads: Path | None = None) -> dict:
    """Runs the three evaluations on the installed heads, or those in ``heads``; returns a JSON-able dict
    (see the module docstring). ``config``: the preset's (its file's ``[eval]``) where not given."""
    if not isinstance(preset, Preset):
        preset = get_preset(preset)
    config = config or EvalConfig.from_preset(preset)
    if heads is not None and not Path(heads).is_dir():  # tiny would quietly fall back to its seeded heads
        raise InputError(f"no heads folder {heads}")
    require_heads(preset, heads)
    report = progress or (lambda fraction, message: None)
    pipeline = load_pipeline(preset, heads)
    results = {
        "preset": preset.label,
        "trained": preset.trained,
        "label": "trained" if preset.trained else "UNTRAINED: random weights; numbers check the plumbing, not quality",
        "heads": str(heads_folder(preset, heads)),
        "config": asdict(config),
    }
    generator = pipeline.generator
    z = torch.randn(config.n, generator.config.style_dim,
                    generator=torch.Generator().manual_seed(config.seed + FACES_SEED_OFFSET))
    with torch.no_grad():
        wplus = generator.z_to_wplus(z.to(generator.w_avg.device), config.psi)
        photos = [Image.fromarray(image) for image in to_uint8(generator(wplus, size=config.size))]

    report(0.0, "inversion")
    results["inversion"], pipeline_notices = inversion_scores(pipeline, photos, config, report)
    results["notices"] = pipeline_notices
    report(0.4, "edits")
    results["edit"] = edit_scores(pipeline, wplus, config)
    refiner = heads_folder(preset, heads) / "refiner.safetensors"
    if refiner.is_file():
        report(0.5, "refiner")
        results["refiner"] = refiner_scores(pipeline, refiner, config)
    report(0.6, "strength: learned vs fixed vs oracle")
    results["strength"] = strength_scores(pipeline, StrengthTrainConfig.from_preset(preset).target, config, report)
    report(1.0, "done")
    return results


def inversion_scores(pipeline: Pipeline, photos: list[Image.Image], config: EvalConfig,
                     report: Progress) -> tuple[dict, list[str]]:
    """(scores, the pipeline's notices: untrained models and the like)."""
    plain, refined, calls, notices = [], [], [], []
    for i, photo in enumerate(photos):
        result = pipeline.invert(PhotoStart(photo, aligned=True), size=config.size)  # G's faces are FFHQ-framed
        notices += [n for n in result.notices if n not in notices]
        plain.append(result.faces[0].scores["clip_similarity"])
        face = pipeline.invert(PhotoStart(photo, aligned=True), refine_steps=config.refine_steps, size=config.size).faces[0]
        refined.append(face.scores["clip_similarity"])
        calls.append(face.scores["generator_calls"])
        report(0.4 * (i + 1) / len(photos), "inversion")
    return {
        "similarity": _mean(plain),
        "similarity_refined": _mean(refined),
        "refine_steps": config.refine_steps,
        "generator_calls": 1,
        "generator_calls_refined": _mean(calls),
        "n": len(photos),
    }, notices


def edit_scores(pipeline: Pipeline, wplus: torch.Tensor, config: EvalConfig) -> dict:
    from .data import prompt_split
    from .text.prompts import embed_prompts

    _, held_out = prompt_split()
    gains, losses, strengths = [], [], []
    for i, w in enumerate(wplus.cpu().numpy()):  # W+ as numpy: the start every pipeline takes
        # each face gets its own slice of the held-out prompts
        prompts = [held_out[(i * config.edit_prompts + k) % len(held_out)] for k in range(config.edit_prompts)]
        text_embeddings, _ = embed_prompts(pipeline.engine, prompts)
        face_embedding = pipeline.engine.embed_pixels(pipeline.engine.synthesize(w[None], config.size))
        before = (face_embedding * text_embeddings).sum(-1)
        for prompt, score_before in zip(prompts, before.tolist()):
            scores = pipeline.edit(w, prompt, strengths=["learned"], size=config.size).variants[0].face.scores
            gains.append(scores["text_score"] - score_before)
            losses.append(1 - scores["clip_similarity"])
            strengths.append(scores["C"])
    return {
        "text_score_gain": _mean(gains),
        "similarity_loss": _mean(losses),
        "strength_mean": _mean(strengths),
        "gain_per_similarity_loss": _mean(gains) / max(_mean(losses), 1e-8),
        "n_edits": len(gains),
    }


def refiner_scores(pipeline: Pipeline, path: Path, config: EvalConfig) -> dict:
    from .models.refiner import load_refiner
    from .training.common import ServingModels
    from .training.refiner import evaluate_refiner

    refiner = load_refiner(path, pipeline.preset.name).to(pipeline.generator.w_avg.device)
    models = ServingModels(pipeline.generator.w_avg.device, pipeline.generator, pipeline.mapper,
                           pipeline.text_encoder, pipeline.image_encoder, {})
    psi_min, mix_prob = RefinerTrainConfig.from_preset(pipeline.preset).truncation(pipeline.preset)
    # the held-out faces of `train refiner` (their own stream), the optimisation with the eval's refine steps
    return evaluate_refiner(refiner, models, config.n, psi_min, mix_prob, config.seed, config.refine_steps)


def strength_scores(pipeline: Pipeline, target: float, config: EvalConfig, report: Progress) -> dict:
    from .training.strength import evaluate_strength, text_edit_bank

    bank = text_edit_bank(pipeline.text_encoder, pipeline.mapper)
    return evaluate_strength(
        pipeline.strength, pipeline.generator, pipeline.image_encoder, bank, config.strength_pairs, target,
        config.psi, config.size, config.seed, progress=lambda f, message: report(0.6 + 0.4 * f, message),
    )


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def table_lines(results: dict) -> list[str]:
    """The preset, the pipeline's notes and a (section, metric, value) table: what the CLIs print."""
    rows = [[section, key, f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else value]
            for section in ("inversion", "edit", "refiner", "strength") for key, value in results.get(section, {}).items()]
    rows = [["section", "metric", "value"], *rows]
    widths = [max(len(str(row[i])) for row in rows) for i in range(3)]
    return [f"preset: {results['preset']} ({results['label']}), heads in {results['heads']}",
            *(f"note: {notice}" for notice in results["notices"]),
            *("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)]
