"""The ONNX Runtime engine: the exported graphs behind celeblook.engine's numpy interface.

Chosen with ``CELEBLOOK_BACKEND=onnx`` in the full install (default ``torch``), and always in the runtime
install, which has no torch; the graphs come from ``python -m celeblook export onnx --out DIR`` and are found in
``CELEBLOOK_ONNX_DIR`` (default ``<weights>/<preset>/onnx``). A graph the export lacks runs on the ``fallback``
engine (the torch models) where there is one.

On a small shared CPU two spinning thread pools wreck latency (docs/toolchain.md §6), so every session is created
once, with intra-op spinning off and ``CELEBLOOK_ORT_THREADS`` threads (default 2); the factory limits torch to
one thread while this engine is active. This module imports no torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from ..engine import Engine
from ..errors import InputError, WeightsError
from ..files import weights_dir
from ..preprocess import photos_to_clip, pixels_to_clip
from ..remedy import command
from ..text.tokenizer import eot_length

BACKEND_ENV = "CELEBLOOK_BACKEND"
THREADS_ENV = "CELEBLOOK_ORT_THREADS"
ONNX_DIR_ENV = "CELEBLOOK_ONNX_DIR"
DEFAULT_THREADS = 2
BACKENDS = ("torch", "onnx")


def backend_name(default: str = "torch") -> str:
    """``CELEBLOOK_BACKEND``, else ``default`` (the runtime install, which has no torch, defaults to onnx)."""
    name = os.environ.get(BACKEND_ENV, default).strip().lower() or default
    if name not in BACKENDS:
        raise InputError(f"{BACKEND_ENV}={name!r} is not a backend; choose one of: {', '.join(BACKENDS)}")
    return name


def ort_threads() -> int:
    raw = os.environ.get(THREADS_ENV, str(DEFAULT_THREADS))
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{THREADS_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


def session_options(precision: str = "fp32", threads: int | None = None) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or ort_threads()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # errors only: fp16 graphs log harmless "cannot constant-fold" warnings
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    # ORT 1.32 CPU segfaults building fp16 CLIP sessions at ORT_ENABLE_ALL (docs/toolchain.md §5)
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if precision == "fp16" else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    return so


def open_session(path: str | Path, precision: str = "fp32", threads: int | None = None) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), session_options(precision, threads), providers=["CPUExecutionProvider"])


def default_onnx_dir(preset: str) -> Path:
    """``CELEBLOOK_ONNX_DIR``, else ``<weights>/<preset>/onnx``: where ``train all --out <weights>/<preset>`` exports and
    where a heads repository's export lands (``weights download --heads``)."""
    return Path(os.environ.get(ONNX_DIR_ENV) or weights_dir() / preset / "onnx")


def _array(x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=dtype)


class OrtEngine:
    """The exported graphs of one directory, each opened once on first use.

    ``precision`` picks ``*_fp16.onnx`` variants where present (download size, WebGPU; no CPU speed-up);
    ``text_int8`` prefers ``text_encoder_int8.onnx`` (about 2x faster than fp32 on CPU). Photos and generated
    faces go through the export's ``photo_encoder`` (the one its mapper reads), else ``photo_graph``.
    """

    def __init__(self, directory: str | Path, threads: int | None = None, precision: str = "fp32", text_int8: bool = True,
                 photo_graph: str | None = None, fallback: Engine | None = None):
        self.directory = Path(directory)
        manifest = self.directory / "manifest.json"
        if not manifest.is_file():
            raise WeightsError(f"no ONNX export in {self.directory}: make one with `{command('export', 'onnx', '--out', self.directory)}` "
                               f"(full install), fetch one published with trained heads "
                               f"(CELEBLOOK_HEADS_REPO=OWNER/NAME), or set {ONNX_DIR_ENV}")
        self.manifest = json.loads(manifest.read_text())
        self.threads = threads or ort_threads()
        self.precision = precision
        self.text_int8 = text_int8
        self.fallback = fallback
        self.files = {e["file"]: e for e in self.manifest["files"]}
        self.constants = self.manifest.get("constants", {})
        self._sessions: dict[str, ort.InferenceSession] = {}
        # an exported mapper reads the encoder exported with it; otherwise the caller's (the torch mapper's) choice
        self.photo_graph = self.constants.get("photo_encoder") or photo_graph or (
            "image_encoder" if self.has_graph("image_encoder") else "image_encoder_teacher")
        mapper = self.files.get("mapper.onnx", {}).get("meta", {})
        self.e_scale = float(mapper.get("e_scale", fallback.e_scale if fallback is not None else 1.0))
        refiner = self.files.get("refiner.onnx", {}).get("meta")  # the exported refiner, else the fallback's
        self.refiner_iterations = int(refiner["iterations"]) if refiner else getattr(fallback, "refiner_iterations", 0)
        self.refiner_size = int(refiner["render_size"]) if refiner else getattr(fallback, "refiner_size", 256)

    @classmethod
    def from_env(cls, preset: str, **options) -> OrtEngine:
        return cls(default_onnx_dir(preset), **options)

    # -- sessions ---------------------------------------------------------------------------------

    def has_graph(self, model: str) -> bool:
        return f"{model}.onnx" in self.files

    def has(self, part: str) -> bool:
        return self.has_graph(part) or (self.fallback is not None and self.fallback.has(part))

    def file(self, model: str) -> dict:
        """The manifest entry of the file that runs ``model``: the configured variant where exported, else fp32."""
        preferred = {"fp16": f"{model}_fp16.onnx", "int8": f"{model}_int8.onnx"}
        variant = "int8" if model == "text_encoder" and self.text_int8 else self.precision
        name = preferred.get(variant, f"{model}.onnx")
        if name not in self.files:
            name = f"{model}.onnx"
        if name not in self.files:
            raise WeightsError(
                f"{model}.onnx is not in {self.directory}: run `{command('export', 'onnx', '--models', model, '--out', self.directory)}`"
            )
        return self.files[name]

    def session(self, model: str) -> ort.InferenceSession:
        """The session of ``model`` (e.g. "synthesis_512"), preferring the configured variant."""
        if model not in self._sessions:
            entry = self.file(model)
            self._sessions[model] = open_session(self.directory / entry["file"], entry["precision"], self.threads)
        return self._sessions[model]

    def _run(self, model: str, **feeds: np.ndarray) -> np.ndarray:
        return self.session(model).run(None, feeds)[0]

    def _exported(self, model: str) -> bool:
        """True: run ``model``'s graph; False: the fallback engine runs it; neither: the error names the command."""
        if self.has_graph(model) or self.fallback is None:
            self.file(model)  # raises the WeightsError that names the export command
            return True
        return False

    # -- the engine (celeblook.engine.Engine) -----------------------------------------------------

    @property
    def w_avg(self) -> np.ndarray:
        if "w_avg" in self.constants:
            return np.asarray(self.constants["w_avg"], np.float32)[None]
        if self.fallback is not None:
            return self.fallback.w_avg
        raise WeightsError(f"the export in {self.directory} has no generator: run "
                           f"`{command('export', 'onnx', '--out', self.directory)}`")

    @property
    def sizes(self) -> list[int]:
        return sorted(int(e["model"].split("_")[1]) for e in self.files.values()
                      if e["model"].startswith("synthesis_") and e["precision"] == "fp32")

    def mapping(self, z: np.ndarray) -> np.ndarray:
        if not self._exported("mapping"):
            return self.fallback.mapping(z)
        return self._run("mapping", z=_array(z))

    def synthesize(self, wplus: np.ndarray, size: int = 1024) -> np.ndarray:
        """W+ (N,23,512) -> image (N,3,size,size), nominally [-1,1], zero noise."""
        if size not in self.sizes:
            if self.fallback is not None:
                return self.fallback.synthesize(wplus, size)
            raise InputError(f"size must be one of {', '.join(map(str, self.sizes))} with the export in {self.directory}, got {size}")
        return self._run(f"synthesis_{size}", wplus=_array(wplus))

    def embed_clip_pixels(self, pixels: np.ndarray, graph: str | None = None) -> np.ndarray:
        """CLIP-normalised (N,3,224,224) -> unit embeddings (N,768), by ``graph`` (default ``photo_graph``)."""
        return self._run(graph or self.photo_graph, pixels=_array(pixels))

    def embed_photos(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL pictures -> unit embeddings, preprocessed exactly as the torch encoders do (celeblook.preprocess)."""
        if not self._exported(self.photo_graph):
            return self.fallback.embed_photos(images)
        clip = self.constants["clip"]
        return self.embed_clip_pixels(photos_to_clip(images, clip["mean"], clip["std"], clip["size"]))

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        if not self._exported(self.photo_graph):
            return self.fallback.embed_pixels(pixels)
        clip = self.constants["clip"]
        return self.embed_clip_pixels(pixels_to_clip(np.asarray(pixels, np.float32), clip["mean"], clip["std"], clip["size"]))

    def embed_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids (N,77) int64 (celeblook.text.tokenizer) -> unit embeddings (N,768).

        The columns after the batch's last end-of-text token are dropped first when the graph takes any token
        length (a named axis in the manifest; exact for causal text towers: celeblook.export.graphs.text_encoder_graph).
        """
        if not self._exported("text_encoder"):
            return self.fallback.embed_tokens(tokens)
        tokens = _array(tokens, np.int64)
        if isinstance(self.file("text_encoder")["inputs"][0]["shape"][1], str):
            tokens = tokens[:, : eot_length(tokens)]
        return self._run("text_encoder", tokens=tokens)

    def map(self, embedding: np.ndarray) -> np.ndarray:
        if not self._exported("mapper"):
            return self.fallback.map(embedding)
        return self._run("mapper", embedding=_array(embedding))

    def strength(self, wplus: np.ndarray, embedding: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """The learned edit strength C (N,) for W+, the target text embedding and the edit direction."""
        if not self._exported("strength"):
            return self.fallback.strength(wplus, embedding, delta)
        return self._run("strength", wplus=_array(wplus), embedding=_array(embedding), delta=_array(delta))

    def refine(self, photo: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
        """One refiner iteration's W+ residual for photo and reconstruction (N,3,S,S) in [-1,1]."""
        if not self._exported("refiner"):
            return self.fallback.refine(photo, reconstruction)
        return self._run("refiner", photo=_array(photo), reconstruction=_array(reconstruction))
