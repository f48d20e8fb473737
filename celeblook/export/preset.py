"""A preset's models built and exported (``celeblook export onnx``), and the graphs ``export check`` rebuilds from
an export's recorded source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import InputError, WeightsError
from ..files import output_dir, sha256_file, weights_dir
from ..models.mobilestylegan import Generator
from ..presets import Preset

if TYPE_CHECKING:
    pass

from .graphs import (
    SYNTHESIS_SIZES,
    Graph,
    generator_graphs,
    image_encoder_graph,
    mapper_graph,
    refiner_graph,
    refiner_sizes,
    strength_graph,
    text_encoder_graph,
)
from .onnx import OPSET, Progress, export_models

MODELS = ("mapping", "synthesis", "image_encoder", "text_encoder", "mapper", "strength", "refiner")
TEACHER = "image_encoder_teacher"


def clip_constants(mean: Sequence[float], std: Sequence[float]) -> dict:
    """The CLIP preprocessing a runtime applies before image_encoder.onnx (manifest ``constants.clip``)."""
    return {"size": 224, "mean": list(mean), "std": list(std),
            "resize": "shortest side to 224, bicubic (Pillow), centre crop", "range": [0, 1]}


def load_generator(preset: Preset, checkpoint: str | Path | None = None) -> Generator:
    """The preset's generator, or one read from ``checkpoint`` (any format ``render`` accepts)."""
    from ..factory import create_generator

    return create_generator(preset, checkpoint)


@dataclass
class BuiltGraphs:
    """What ``build_graphs`` made: the graphs, the runtime constants they need, and the models left out
    (name -> why, e.g. the WeightsError naming the command that gets the weights)."""

    graphs: list[Graph]
    constants: dict
    skipped: dict[str, str] = field(default_factory=dict)


def build_graphs(
    preset: Preset,
    checkpoint: str | Path | None = None,
    models: Sequence[str] = MODELS,
    progress: Progress | None = None,
    skip_missing: bool = False,
    heads: Path | None = None,
) -> BuiltGraphs:
    """The graphs for ``models`` (names from MODELS, plus TEACHER) and the runtime constants they need; the
    trained heads (mapper, strength head, student) from ``heads`` (default where the pipeline reads them).

    ``skip_missing`` (the user asked for "everything", not for named models): models of MODELS whose
    weights are missing are left out and listed in ``skipped`` instead of raising WeightsError; WeightsError
    only when nothing at all can be built. A TEACHER asked for is always required. The refiner is optional
    (an inversion without it is the mapper's answer): "everything" exports it when ``heads`` has one, with the
    generator exit it renders at.
    """
    from ..factory import trained_student  # the factory's models load open_clip: only for exports

    say = progress or (lambda _msg: None)
    heads = Path(heads) if heads is not None else weights_dir() / preset.name
    unknown = sorted(set(models) - set(MODELS) - {TEACHER} - {f"synthesis_{s}" for s in SYNTHESIS_SIZES})
    if unknown:
        raise InputError(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(MODELS + (TEACHER,))}")
    built = BuiltGraphs([], {"preset": preset.name, "trained": preset.trained})
    graphs, constants = built.graphs, built.constants
    wanted = set(models)
    sizes = [s for s in SYNTHESIS_SIZES if "synthesis" in wanted or f"synthesis_{s}" in wanted]
    optional = set(MODELS) | {f"synthesis_{s}" for s in SYNTHESIS_SIZES} if skip_missing else set()

    def load(what: str, names: Sequence[str], factory: Callable[[], object]) -> object | None:
        """``factory()``, or None with ``names`` listed as skipped when its weights are missing (if optional)."""
        say(f"loading {what}")
        try:
            return factory()
        except WeightsError as err:
            if not set(names) <= optional:
                raise
            built.skipped.update(dict.fromkeys(names, str(err)))
            say(f"skipping {', '.join(names)}: {err}")
            return None

    refiner = None
    if "refiner" in wanted and (not skip_missing or (heads / "refiner.safetensors").exists()):
        refiner = load("the refiner", ["refiner"], partial(load_refiner_head, preset, heads))
        if refiner is not None and sizes:
            sizes = refiner_sizes(sizes, refiner)
    generator = clip = None
    if {"mapping", "mapper", "strength"} & wanted or sizes:  # the strength head's stand-in needs the generator's w_avg
        needs_generator = [name for name in ("mapping", *(f"synthesis_{s}" for s in sizes), "mapper", "strength")
                           if name in wanted or name.startswith("synthesis_")]
        generator = load("the generator", needs_generator, partial(load_generator, preset, checkpoint))
    if generator is not None:
        gen_graphs = generator_graphs(generator, sizes)
        graphs += [g for g in gen_graphs if g.name != "mapping" or "mapping" in wanted]
        constants.update(w_avg=generator.w_avg[0].tolist(), n_slots=generator.config.n_slots, sizes=sizes)
    if {"text_encoder", TEACHER} & wanted:
        from ..models.clip import create_clip  # open_clip loads only for exports that need it

        clip = load("CLIP", sorted({"text_encoder", TEACHER} & wanted), partial(create_clip, preset))
        if clip is not None:
            constants["clip"] = clip_constants(clip.spec.mean, clip.spec.std)
            if "text_encoder" in wanted:
                graphs.append(text_encoder_graph(clip.text, clip.context_length, clip.tokenizer.vocab_size))
            if TEACHER in wanted:
                graphs.append(image_encoder_graph(clip.visual, TEACHER))
    if "image_encoder" in wanted:
        from ..models.student import create_student

        student = load("the student encoder", ["image_encoder"], partial(create_student, preset, trained_student(preset, heads)))
        if student is not None:
            graphs.append(image_encoder_graph(student))
            constants.setdefault("clip", clip_constants(student.mean, student.std))  # the teacher's, which it copies
    if "mapper" in wanted and generator is not None:
        from ..factory import create_mapper

        def mapper_head():
            mapper, encoder, _notices, missing = create_mapper(preset, heads, generator)
            if mapper is None:
                raise WeightsError(missing[0])
            return mapper, encoder

        head = load("the mapper", ["mapper"], mapper_head)
        if head is not None:
            graphs.append(mapper_graph(head[0]))
            constants["mapper_encoder"] = head[1]  # which image encoder's space the mapper reads
            constants["photo_encoder"] = photo_encoder(preset, head[1], heads)  # the graph photos go through, as the Pipeline
            if skip_missing and constants["photo_encoder"] == TEACHER and TEACHER not in wanted and clip is not None:
                graphs.append(image_encoder_graph(clip.visual, TEACHER))  # "everything" includes what the mapper reads
    if "strength" in wanted and generator is not None:
        from ..factory import create_strength

        def strength_head():
            predictor, _notices, missing = create_strength(preset, heads, generator)  # tiny: its seeded stand-in
            if predictor is None:
                raise WeightsError(missing[0])
            return predictor

        predictor = load("the strength predictor", ["strength"], strength_head)
        if predictor is not None:
            graphs.append(strength_graph(predictor))
            constants["c_max"] = predictor.config.c_max
    if refiner is not None:
        graphs.append(refiner_graph(refiner))
    if "strength" in built.skipped:  # named last, as it is built last (a missing generator skips it early)
        built.skipped["strength"] = built.skipped.pop("strength")
    if not graphs:
        reasons = sorted(set(built.skipped.values()))
        raise WeightsError(f"nothing to export: no weights for any of {', '.join(built.skipped)} ({'; '.join(reasons)})")
    names = ("mapping", *(f"synthesis_{s}" for s in sorted({*SYNTHESIS_SIZES, *sizes}, reverse=True)), "image_encoder", TEACHER,
             "text_encoder", "mapper", "strength", "refiner")
    order = {name: i for i, name in enumerate(names)}
    graphs.sort(key=lambda g: order[g.name])
    return built


def load_refiner_head(preset: Preset, heads: Path):
    """The refiner in ``heads`` (a WeightsError naming `train refiner` when it has none)."""
    from ..factory import check_head
    from ..models.refiner import load_refiner

    path = heads / "refiner.safetensors"
    if path.exists():
        check_head(preset, "refiner", path)
    return load_refiner(path, preset.name)


def photo_encoder(preset: Preset, mapper_encoder: str, heads: Path | None = None) -> str:
    """The graph a runtime embeds photos (and scores faces) with: the factory's choice (create_image_encoder)."""
    from ..factory import trained_student

    return "image_encoder" if mapper_encoder == "student" or trained_student(preset, heads) is not None else TEACHER


def graphs_from_source(source: dict, files: Sequence[str]) -> list[Graph]:
    """Rebuild the torch references of a manifest's ``source`` (for ``export check``)."""
    from ..presets import get_preset

    checkpoint = source.get("checkpoint")
    if checkpoint and Path(checkpoint).is_file() and sha256_file(Path(checkpoint)) != source.get("checkpoint_sha256"):
        raise WeightsError(f"{checkpoint} changed since the export (sha256 differs): re-run the export")
    names = {f.removesuffix("_fp16").removesuffix("_int8") for f in files}
    # the refiner's own exit (e.g. the tiny refiner's 64) is not a size to ask for: exporting the refiner adds it
    names = {n for n in names if not n.startswith("synthesis_") or int(n.split("_")[1]) in SYNTHESIS_SIZES}
    try:
        preset = get_preset(source["preset"])
    except InputError as err:
        raise InputError(f"the manifest's source: {err}") from None
    return build_graphs(preset, checkpoint, sorted(names), heads=source.get("heads")).graphs


INT8_ALWAYS = ("text_encoder",)  # dynamic int8 roughly halves the ViT text tower's CPU latency
INT8_OPTIONAL = ("image_encoder", TEACHER, "mapper")  # with --int8; conv generators gain nothing from it


def export_preset(
    preset: Preset,
    out_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    models: Sequence[str] | None = None,
    teacher: bool = False,
    fp16: bool = False,
    int8: bool = False,
    opset: int = OPSET,
    progress: Progress | None = None,
    heads: Path | None = None,
) -> Path:
    """``python -m celeblook export onnx``: build the preset's models and export them; returns the manifest path.
    ``heads``: the folder of the trained heads (``train all``'s), default where the pipeline reads them.

    Without ``models`` every model whose weights exist is exported; the manifest's ``skipped`` lists the others
    and why (WeightsError only when there is nothing to export).
    """
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise InputError(f"checkpoint not found: {checkpoint}")
    output_dir(Path(out_dir))  # before minutes of loading and exporting
    skip_missing = models is None  # "everything": export what has weights, say what was skipped
    models = list(models or MODELS) + ([TEACHER] if teacher else [])
    built = build_graphs(preset, checkpoint, models, progress, skip_missing, heads)
    source = {"preset": preset.name, "heads": str(Path(heads).resolve()) if heads is not None else None,
              "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
              "checkpoint_sha256": sha256_file(Path(checkpoint)) if checkpoint else None,
              "torch": torch.__version__}
    quantized = INT8_ALWAYS + (INT8_OPTIONAL if int8 else ())
    return export_models(built.graphs, out_dir, fp16=fp16, int8=quantized, constants=built.constants, source=source,
                         opset=opset, progress=progress, skipped=built.skipped)
