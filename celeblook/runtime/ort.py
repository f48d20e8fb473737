"""ONNX Runtime backend: the exported graphs behind the same small interface the Pipeline uses from torch.

Chosen with ``CELEBLOOK_BACKEND=onnx`` (default ``torch``); the graphs come from ``python -m celeblook export
onnx --out DIR`` and are found in ``CELEBLOOK_ONNX_DIR`` (default ``<weights>/onnx/<preset>``).

On a small shared CPU two spinning thread pools wreck latency (toolchain.md §6), so every session is created
once, with intra-op spinning off and ``CELEBLOOK_ORT_THREADS`` threads (default 2), and torch is limited to
one thread while this backend is active. Inputs may be numpy arrays or torch tensors; outputs are torch
tensors, because the Pipeline composes them with torch code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from torch import Tensor

from ..errors import InputError, WeightsError
from ..preprocess import photos_to_clip
from ..tokenizer import eot_length

BACKEND_ENV = "CELEBLOOK_BACKEND"
THREADS_ENV = "CELEBLOOK_ORT_THREADS"
ONNX_DIR_ENV = "CELEBLOOK_ONNX_DIR"
DEFAULT_THREADS = 2
BACKENDS = ("torch", "onnx")


def backend_name() -> str:
    name = os.environ.get(BACKEND_ENV, "torch").strip().lower() or "torch"
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
    # ORT 1.32 CPU segfaults building fp16 CLIP sessions at ORT_ENABLE_ALL (toolchain.md §5)
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED if precision == "fp16" else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    )
    return so


def open_session(path: str | Path, precision: str = "fp32", threads: int | None = None) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), session_options(precision, threads), providers=["CPUExecutionProvider"])


def default_onnx_dir(preset: str) -> Path:
    from ..files import weights_dir

    return Path(os.environ.get(ONNX_DIR_ENV) or weights_dir() / "onnx" / preset)


def _numpy(x: Tensor | np.ndarray, dtype=np.float32) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=dtype)


class OrtBackend:
    """The exported graphs of one directory, each opened once on first use.

    ``precision`` picks ``*_fp16.onnx`` variants where present (download size, WebGPU; no CPU speed-up);
    ``text_int8`` prefers ``text_encoder_int8.onnx`` (about 2x faster than fp32 on CPU).
    """

    def __init__(self, directory: str | Path, threads: int | None = None, precision: str = "fp32", text_int8: bool = True):
        self.directory = Path(directory)
        manifest = self.directory / "manifest.json"
        if not manifest.is_file():
            raise WeightsError(f"no ONNX export in {self.directory}: run `python -m celeblook export onnx --out {self.directory}`")
        self.manifest = json.loads(manifest.read_text())
        self.threads = threads or ort_threads()
        self.precision = precision
        self.text_int8 = text_int8
        self.files = {e["file"]: e for e in self.manifest["files"]}
        self.constants = self.manifest.get("constants", {})
        self._sessions: dict[str, ort.InferenceSession] = {}
        torch.set_num_threads(1)  # one runtime owns the cores (toolchain.md §6)

    @classmethod
    def from_env(cls, preset: str) -> OrtBackend:
        return cls(default_onnx_dir(preset))

    # -- sessions ---------------------------------------------------------------------------------

    def has(self, model: str) -> bool:
        return f"{model}.onnx" in self.files

    def file(self, model: str) -> dict:
        """The manifest entry of the file that runs ``model``: the configured variant where exported, else fp32."""
        preferred = {"fp16": f"{model}_fp16.onnx", "int8": f"{model}_int8.onnx"}
        variant = "int8" if model == "text_encoder" and self.text_int8 else self.precision
        name = preferred.get(variant, f"{model}.onnx")
        if name not in self.files:
            name = f"{model}.onnx"
        if name not in self.files:
            raise WeightsError(
                f"{model}.onnx is not in {self.directory}: run `python -m celeblook export onnx --models {model} "
                f"--out {self.directory}`"
            )
        return self.files[name]

    def session(self, model: str) -> ort.InferenceSession:
        """The session of ``model`` (e.g. "synthesis_512"), preferring the configured variant."""
        if model not in self._sessions:
            entry = self.file(model)
            self._sessions[model] = open_session(self.directory / entry["file"], entry["precision"], self.threads)
        return self._sessions[model]

    def _run(self, model: str, **feeds: np.ndarray) -> list[Tensor]:
        return [torch.from_numpy(o) for o in self.session(model).run(None, feeds)]

    # -- the interface the Pipeline uses ----------------------------------------------------------

    @property
    def w_avg(self) -> Tensor:
        return torch.tensor(self.constants["w_avg"], dtype=torch.float32)[None]

    @property
    def sizes(self) -> list[int]:
        return sorted(int(e["model"].split("_")[1]) for e in self.files.values()
                      if e["model"].startswith("synthesis_") and e["precision"] == "fp32")

    def mapping(self, z: Tensor | np.ndarray) -> Tensor:
        return self._run("mapping", z=_numpy(z))[0]

    def synthesize(self, wplus: Tensor | np.ndarray, size: int = 1024) -> Tensor:
        """W+ (N,23,512) -> image (N,3,size,size), nominally [-1,1], zero noise."""
        if size not in self.sizes:
            raise InputError(f"size must be one of {', '.join(map(str, self.sizes))}, got {size}")
        return self._run(f"synthesis_{size}", wplus=_numpy(wplus))[0]

    def embed_pixels(self, pixels: Tensor | np.ndarray, graph: str = "image_encoder") -> Tensor:
        """CLIP-normalised (N,3,224,224) -> unit embeddings (N,768), by ``graph``: the student's
        ``image_encoder`` or the teacher tower's ``image_encoder_teacher`` (``ImageEncoder.graph``)."""
        return self._run(graph, pixels=_numpy(pixels))[0]

    def embed_images(self, images: Sequence[Image.Image], graph: str = "image_encoder") -> Tensor:
        """PIL pictures -> unit embeddings, preprocessed exactly as the torch encoders do (celeblook.preprocess)."""
        clip = self.constants["clip"]
        return self.embed_pixels(photos_to_clip(images, clip["mean"], clip["std"], clip["size"]), graph)

    def embed_tokens(self, tokens: Tensor | np.ndarray) -> Tensor:
        """Token ids (N,77) int64 (tokenise outside: celeblook.text) -> unit embeddings (N,768).

        The columns after the batch's last end-of-text token are dropped first when the graph takes any token
        length (a named axis in the manifest; exact for causal text towers: celeblook.export.onnx.text_encoder_graph).
        """
        tokens = _numpy(tokens, np.int64)
        if isinstance(self.file("text_encoder")["inputs"][0]["shape"][1], str):
            tokens = tokens[:, : eot_length(tokens)]
        return self._run("text_encoder", tokens=tokens)[0]

    def mapper(self, embedding: Tensor | np.ndarray) -> Tensor:
        return self._run("mapper", embedding=_numpy(embedding))[0]

    def strength(self, wplus: Tensor | np.ndarray, embedding: Tensor | np.ndarray, delta: Tensor | np.ndarray) -> Tensor:
        """The learned edit strength C (N,) for W+, the target text embedding and the edit direction."""
        return self._run("strength", wplus=_numpy(wplus), embedding=_numpy(embedding), delta=_numpy(delta))[0]
