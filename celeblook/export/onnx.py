"""Export CelebrityLook's models to ONNX for ONNX Runtime (CPU, the app) and onnxruntime-web (the browser).

One ``.onnx`` file per graph, all with a dynamic batch axis, written as single files (no ``.onnx.data``),
plus a ``manifest.json`` that lists every file with its inputs, outputs, sha256 and the constants a runtime
needs around the graphs (CLIP preprocessing, ``w_avg``, ``C_max``). Graphs:

    mapping.onnx              z (N,512)            -> w (N,512)
    synthesis_<S>.onnx        wplus (N,23,512)     -> image (N,3,S,S), S in 256/512/1024, zero noise
    image_encoder.onnx        pixels (N,3,224,224) -> image_embedding (N,768)  (the student; CLIP-normalised)
    image_encoder_teacher.onnx                                                 (the ViT-L/14 tower, on request)
    text_encoder.onnx         tokens (N,L) int64   -> text_embedding (N,768)   (+ text_encoder_int8.onnx)
    mapper.onnx               embedding (N,768)    -> wplus (N,23,512)
    strength.onnx             wplus (N,23,512), embedding (N,768), delta (N,23,512) -> strength (N,)

Generator graphs are the spec form (mobilestylegan.md §5: demodulation folded, zero noise, inverse Haar as a
pixel shuffle), rewritten for fewer memory passes in ``synthesis_graph.py``. torch 2.13's dynamo exporter is
used (the legacy one is deprecated); its known dropped-epsilon problem does not apply because the demodulation
is a constant here.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import InputError, WeightsError
from ..files import output_dir, sha256_file, weights_dir
from ..models.mobilestylegan import Generator
from ..presets import Preset
from ..runtime.ort import open_session
from .parity import compare
from .synthesis_graph import ExportedSynthesis

if TYPE_CHECKING:
    from ..models.clip import ClipTeacher, ClipTextTower

OPSET = 18  # conservative for onnxruntime-web; opset 17-23 gave identical results (docs/toolchain.md §4)
MANIFEST = "manifest.json"
FORMAT = "celeblook-onnx/1"
SYNTHESIS_SIZES = (1024, 512, 256)
MAX_BATCH = 64
TOKEN_AXIS = "length"  # the text encoder's dynamic token axis in the manifest: runtimes may cut after the last EOT
Progress = Callable[[str], None]


@dataclass
class Graph:
    """One model to export: a module, named example inputs (batch first) and its output names."""

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: list[str]
    meta: dict = field(default_factory=dict)
    torch_forward: Callable[..., Tensor] | None = None  # the model's own forward, when the module is a rewrite
    dynamic: dict[str, dict[int, torch.export.Dim]] = field(default_factory=dict)  # axes besides the batch, by input

    def reference(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The torch outputs for ORT-style numpy feeds."""
        forward = self.torch_forward or self.module
        with torch.inference_mode():
            out = forward(*(torch.from_numpy(feeds[k]) for k in self.inputs))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return [o.float().numpy() for o in out]


def generator_graphs(generator: Generator, sizes: Sequence[int] = SYNTHESIS_SIZES) -> list[Graph]:
    """mapping.onnx and one synthesis_<size>.onnx per exit size."""
    cfg = generator.config
    graphs = [Graph("mapping", generator.mapping, {"z": torch.randn(2, cfg.style_dim)}, ["w"])]
    for size in sizes:
        module = ExportedSynthesis(generator.synthesis, size).eval()
        example = {"wplus": torch.randn(2, cfg.n_slots, cfg.style_dim)}
        meta = {"size": size, "range": [-1, 1], "noise": "zero"}
        graphs.append(Graph(f"synthesis_{size}", module, example, ["image"], meta, partial(generator, size=size)))
    return graphs


def image_encoder_graph(encoder: nn.Module, name: str = "image_encoder") -> Graph:
    """An ImageEncoder (student or teacher tower): CLIP-normalised pixels -> unit embedding."""
    size = getattr(encoder, "image_size", 224)
    meta = {"image_size": size, "mean": list(encoder.mean), "std": list(encoder.std), "unit_norm": True}
    return Graph(name, encoder, {"pixels": torch.randn(2, 3, size, size)}, ["image_embedding"], meta)


def text_encoder_graph(text_tower: ClipTextTower, context_length: int = 77, vocab_size: int = 49408) -> Graph:
    """Token ids (N,L) int64, 1 <= L <= context_length -> unit embedding; tokenisation stays outside the graph.

    Runtimes cut the tokens after the batch's last end-of-text token (L = its index + 1) before running it:
    exact for causal towers (``CausalTextEncoder``) and several times less work for short prompts; full
    77-column rows give the same result. A tower where the cut is not exact is exported at the fixed context
    length, so its manifest shape (a number, not the name TOKEN_AXIS) tells runtimes not to cut.
    """
    causal = text_tower.causal
    tokens = torch.zeros(2, context_length if causal is None else 8, dtype=torch.int64)
    tokens[:, 0], tokens[:, 1:4], tokens[:, 4] = vocab_size - 2, 320, vocab_size - 1  # start, words, end, padding
    meta = {"context_length": context_length, "vocab_size": vocab_size, "unit_norm": True}
    if causal is None:
        return Graph("text_encoder", text_tower, {"tokens": tokens}, ["text_embedding"], meta)
    length = {"tokens": {1: torch.export.Dim(TOKEN_AXIS, min=1, max=context_length)}}
    return Graph("text_encoder", causal, {"tokens": tokens}, ["text_embedding"], meta, torch_forward=text_tower, dynamic=length)


def mapper_graph(mapper: nn.Module) -> Graph:
    """CLIP embedding -> W+; the centres (w_c, e_c, e_whiten) are buffers, so they are baked into the graph."""
    cfg = mapper.config
    example = {"embedding": torch.randn(2, cfg.embed_dim)}
    # e_scale: the spread text to face varies a prompt's embedding by (text.vary_embedding), in runtimes too
    meta = {"centres": "baked into the graph", "e_scale": float(mapper.e_scale)}
    return Graph("mapper", mapper, example, ["wplus"], meta)


def strength_graph(predictor: nn.Module, n_slots: int = 23) -> Graph:
    """(W+, target text embedding, edit direction) -> C in (0, c_max)."""
    cfg = predictor.config
    example = {
        "wplus": torch.randn(2, n_slots, cfg.style_dim),
        "embedding": torch.randn(2, cfg.embed_dim),
        "delta": torch.randn(2, n_slots, cfg.style_dim),
    }
    return Graph("strength", predictor, example, ["strength"], {"c_max": cfg.c_max})


def model_graphs(
    generator: Generator, student: nn.Module, clip: ClipTeacher, mapper: nn.Module, strength: nn.Module
) -> list[Graph]:
    """Every graph a runtime reads, from models already built (benchmarks, tests); the CLI uses ``build_graphs``,
    which loads only the models asked for."""
    return [*generator_graphs(generator), image_encoder_graph(student),
            text_encoder_graph(clip.text, clip.context_length, clip.tokenizer.vocab_size),
            mapper_graph(mapper), strength_graph(strength)]


# ---------------------------------------------------------------------------------------------------
# writing files


def _value_info(values) -> list[dict]:
    from onnx import helper

    return [
        {
            "name": v.name,
            "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            "dtype": str(helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)),
        }
        for v in values
    ]


def describe(path: Path, **extra) -> dict:
    """The manifest entry of an ONNX file: inputs, outputs, shapes, dtypes, opset, sha256, size."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return {
        "file": path.name,
        "inputs": _value_info(model.graph.input),
        "outputs": _value_info(model.graph.output),
        "opset": opset,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        **extra,
    }


def export_graph(graph: Graph, path: Path, opset: int = OPSET) -> None:
    """torch.export -> ONNX with a dynamic batch on every input (and ``graph.dynamic``'s axes), as one file."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    dynamic = tuple({0: batch, **graph.dynamic.get(name, {})} for name in graph.inputs)
    graph.module.eval()
    # the exporter prints its steps to stdout and warns about opset conversion; keep the CLI's output ours
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph.module,
            tuple(graph.inputs.values()),
            input_names=list(graph.inputs),
            output_names=graph.outputs,
            dynamic_shapes=dynamic,
            opset_version=opset,
            dynamo=True,
            external_data=False,
        )
        program.save(str(path), external_data=False)


def to_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and math inside, fp32 inputs/outputs (for the browser: half the download)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


def to_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 (QUInt8 weights: far more accurate than QInt8 on the CLIP towers, docs/toolchain.md §5)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises "pre-processing" on the root logger; shape inference is not needed here
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    finally:
        root.setLevel(level)


# ---------------------------------------------------------------------------------------------------
# the whole export


def random_feeds(entry: dict, batch: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for a manifest entry: N(0,1) floats, valid token ids (start, words, end, padding)."""
    rng = np.random.default_rng(seed)
    meta = entry.get("meta", {})
    axis_sizes = {"batch": batch, TOKEN_AXIS: meta.get("context_length")}  # full-width token rows, as tokenised
    feeds = {}
    for spec in entry["inputs"]:
        shape = [axis_sizes[d] if isinstance(d, str) else d for d in spec["shape"]]
        if spec["dtype"] == "int64":
            tokens = np.zeros(shape, dtype=np.int64)
            vocab = meta.get("vocab_size", 49408)
            for row in tokens:
                n = int(rng.integers(3, shape[1] - 1))
                row[0], row[1 : n - 1], row[n - 1] = vocab - 2, rng.integers(1, vocab - 2, n - 2), vocab - 1
            feeds[spec["name"]] = tokens
        else:
            feeds[spec["name"]] = rng.standard_normal(shape).astype(spec["dtype"])
    return feeds


def export_models(
    graphs: Sequence[Graph],
    out_dir: str | Path,
    *,
    fp16: bool = False,
    int8: Sequence[str] = (),
    constants: dict | None = None,
    source: dict | None = None,
    opset: int = OPSET,
    progress: Progress | None = None,
    skipped: dict[str, str] | None = None,
) -> Path:
    """Export ``graphs`` (plus fp16 / int8 variants) into ``out_dir`` and write the manifest; returns its path.
    ``skipped``: models left out and why, recorded in the manifest.

    Every file's ORT-vs-torch parity on seeded inputs is measured right after writing and recorded in the
    manifest; ``celeblook.export.check`` repeats it from the files alone.
    """
    out = output_dir(Path(out_dir))
    say = progress or (lambda _msg: None)
    entries = []
    for i, graph in enumerate(graphs, 1):
        start = time.perf_counter()
        path = out / f"{graph.name}.onnx"
        export_graph(graph, path, opset)
        variants = [(path, "fp32")]
        if fp16:
            to_fp16(path, out / f"{graph.name}_fp16.onnx")
            variants.append((out / f"{graph.name}_fp16.onnx", "fp16"))
        if graph.name in int8:
            to_int8(path, out / f"{graph.name}_int8.onnx")
            variants.append((out / f"{graph.name}_int8.onnx", "int8"))
        for file, precision in variants:
            entry = describe(file, model=graph.name, precision=precision, meta=graph.meta)
            feeds = random_feeds(entry)
            got = open_session(file, precision).run(None, feeds)
            entry["parity"] = compare(graph.reference(feeds), got, precision)
            entries.append(entry)
            parity = entry["parity"]
            say(
                f"[{i}/{len(graphs)}] {file.name}: {entry['bytes'] / 2**20:.1f} MB, ORT vs torch "
                f"{parity['metric']} {parity[parity['metric']]:.3g} (tolerance {parity['tolerance']:g}), "
                f"{time.perf_counter() - start:.1f} s"
            )
    manifest = {"format": FORMAT, "opset": opset, "source": source or {}, "constants": constants or {}, "files": entries,
                "skipped": skipped or {}}
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1))
    return path


# ---------------------------------------------------------------------------------------------------
# building the graphs of a preset (the CLI and `export check`)

MODELS = ("mapping", "synthesis", "image_encoder", "text_encoder", "mapper", "strength")
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
    only when nothing at all can be built. A TEACHER asked for is always required.
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
    if "strength" in built.skipped:  # named last, as it is built last (a missing generator skips it early)
        built.skipped["strength"] = built.skipped.pop("strength")
    if not graphs:
        reasons = sorted(set(built.skipped.values()))
        raise WeightsError(f"nothing to export: no weights for any of {', '.join(built.skipped)} ({'; '.join(reasons)})")
    names = ("mapping", *(f"synthesis_{s}" for s in SYNTHESIS_SIZES), "image_encoder", TEACHER, "text_encoder", "mapper", "strength")
    order = {name: i for i, name in enumerate(names)}
    graphs.sort(key=lambda g: order[g.name])
    return built


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
