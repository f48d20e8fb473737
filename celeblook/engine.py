"""The engine: every forward the pipeline runs without gradients, numpy in and numpy out.

Two engines implement it: ``celeblook.models.torch_engine.TorchEngine`` over the torch models, and
``celeblook.runtime.ort.OrtEngine`` over their ONNX exports (``CELEBLOOK_BACKEND=onnx``, and always in the
runtime install, which has no torch). The pipeline composes engines only, so both installs answer a request
with the same code; the torch models stay in ``Models`` for the slow paths, which need gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PIL import Image

from .presets import Preset
from .remedy import Missing

if TYPE_CHECKING:  # the torch models, absent in the runtime install
    from .models.clip import ClipTeacher
    from .models.image_encoder import ImageEncoder
    from .models.mapper import Mapper
    from .models.mobilestylegan import Generator
    from .models.refiner import Refiner
    from .models.strength import StrengthPredictor


class Engine(Protocol):
    w_avg: np.ndarray  # (1, style_dim): the mean w, the centre of truncation
    e_scale: float  # the mapper's embedding spread, which text to face varies a prompt by (1.0 without a mapper)
    refiner_iterations: int  # the refiner's default iteration count k (0 without a refiner)
    refiner_size: int  # the generator exit the refiner compares photo and reconstruction at

    def has(self, part: str) -> bool:
        """Whether the trained part ("mapper", "strength", "refiner") can run."""

    def mapping(self, z: np.ndarray) -> np.ndarray:
        """z (N,512) -> w (N,512)."""

    def synthesize(self, wplus: np.ndarray, size: int) -> np.ndarray:
        """W+ (N,23,512) -> image (N,3,size,size), nominally [-1,1], zero noise."""

    def embed_photos(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Aligned photos -> E_I unit embeddings (N,768)."""

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Generator output (N,3,S,S) in [-1,1] -> E_I unit embeddings (N,768)."""

    def embed_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids (N,77) int64 (celeblook.text.tokenizer) -> E_T unit embeddings (N,768)."""

    def map(self, embedding: np.ndarray) -> np.ndarray:
        """CLIP embeddings (N,768) -> W+ (N,23,512): the mapper f."""

    def strength(self, wplus: np.ndarray, embedding: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """The learned edit strength C (N,) for W+, the target's text embedding and the edit direction."""

    def refine(self, photo: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
        """One refiner iteration's W+ residual (N,23,512) for photo and reconstruction (N,3,S,S) in [-1,1]."""


@dataclass(frozen=True)
class Models:
    """Everything a pipeline composes, built once and shared read-only."""

    preset: Preset
    engine: Engine  # every forward without gradients
    # the torch models (None in the runtime install): the slow paths differentiate through them
    generator: Generator | None = None
    text_encoder: ClipTeacher | None = None  # E_T (its image tower is dropped when the student serves as E_I)
    image_encoder: ImageEncoder | None = None  # E_I: the student, or the teacher's image tower
    mapper: Mapper | None = None  # f; None until trained (ffhq)
    strength: StrengthPredictor | None = None  # learned C; None until trained (ffhq)
    refiner: Refiner | None = None  # R: learned inversion steps; None until trained (every preset)
    notices: tuple[str, ...] = ()  # standing notes about these models, for every result
    missing: tuple[Missing, ...] = ()  # each absent (or unusable) head, with the command that makes it

    @property
    def gradients(self) -> bool:
        """Whether the slow paths (refinement, CLIP-guided optimisation) can run: they need the torch models."""
        return self.generator is not None and self.image_encoder is not None


def truncate(w: np.ndarray, w_avg: np.ndarray, psi: float) -> np.ndarray:
    """w_avg + psi * (w - w_avg), for w (N,512) or W+ (N,slots,512)."""
    avg = w_avg if w.ndim == 2 else w_avg[:, None, :]
    return (avg + np.float32(psi) * (w - avg)).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The mean cosine similarity of the rows of ``a`` and ``b``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dots = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-8)
    return float(dots.mean())
