"""What an edit or a morph may start from (a photo, a prompt, a face made earlier, a W+ latent) and the latent's check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ...errors import InputError
from ...limits import Limits
from ...photo.aligned import DEFAULT_LABEL
from ..results import Face


@dataclass(frozen=True)
class PhotoStart:
    """A photo to invert: a file path, a PIL image or an array; ``face``: which detected face (default the
    largest); ``label`` names the photo in messages ("the second photo")."""

    source: str | Path | Image.Image | np.ndarray | None
    aligned: bool = False
    face: int | None = None
    label: str = DEFAULT_LABEL


@dataclass(frozen=True)
class PromptStart:
    """A face made from a prompt (the mapper's fast path)."""

    text: str
    seed: int = 0
    psi: float = 0.7


Start = PhotoStart | PromptStart | Face | np.ndarray


def labelled(start: Start, label: str) -> Start:
    """A photo start named for messages, unless the caller named it."""
    if isinstance(start, PhotoStart) and start.label == DEFAULT_LABEL:
        return PhotoStart(start.source, start.aligned, start.face, label)
    return start


def is_array(x: object) -> bool:
    """A W+ latent as an array: numpy, or a torch tensor from library callers (never imported here)."""
    return isinstance(x, np.ndarray) or hasattr(x, "detach")


def check_wplus(limits: Limits, style_dim: int, wplus: object) -> np.ndarray:
    """A W+ latent as (1, slots, style_dim) float32, finite."""
    shape = (limits.n_slots, style_dim)
    if hasattr(wplus, "detach"):  # a torch tensor (library callers)
        wplus = wplus.detach().cpu().numpy()
    try:
        wplus = np.asarray(wplus, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"a latent must be a {shape[0]}x{shape[1]} array of numbers (W+)") from None
    if wplus.ndim == 3 and wplus.shape[0] == 1:
        wplus = wplus[0]
    if tuple(wplus.shape) != shape:
        raise InputError(f"a latent must have shape {shape[0]}x{shape[1]} (W+), got {tuple(wplus.shape)}")
    if not np.isfinite(wplus).all():
        raise InputError("the latent contains NaN or infinite values")
    return wplus[None].copy()
