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
    refiner.onnx              photo, reconstruction (N,3,S,S) -> residual (N,23,512)  (when the heads have R; S its
                              render size, whose synthesis_<S>.onnx is exported with it)

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
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..files import output_dir, sha256_file
from ..runtime.ort import open_session
from .graphs import TOKEN_AXIS, Graph
from .parity import compare

if TYPE_CHECKING:
    pass

OPSET = 18  # conservative for onnxruntime-web; opset 17-23 gave identical results (docs/toolchain.md §4)
MANIFEST = "manifest.json"
FORMAT = "celeblook-onnx/1"
MAX_BATCH = 64
Progress = Callable[[str], None]


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
