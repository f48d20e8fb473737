"""What the pipeline's verbs return: faces with their W+ and scores, and the photo they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..photo.aligned import AlignedPhoto
from ..photo.identity import IdentityDistance


@dataclass
class Face:
    image: Image.Image
    wplus: np.ndarray  # (23,512) float32
    scores: dict[str, float] = field(default_factory=dict)
    identity: IdentityDistance | None = None  # vs the person in the photo (or the unedited face), when measured
    pasted: Image.Image | None = None  # the face blended back into the photo it came from (photo inputs)


@dataclass
class Result:
    faces: list[Face]
    notices: list[str] = field(default_factory=list)
    photo: AlignedPhoto | None = None  # for photo inputs: the photo, its crop and every face found there

    @property
    def crop(self) -> Image.Image | None:
        """The aligned crop the face was made from (photo inputs)."""
        return self.photo.aligned.image if self.photo is not None else None


@dataclass(frozen=True)
class Direction:
    """An edit's direction in W+, f(E_T(target)) - f(E_T(source)) (1,23,512), and the target's E_T embedding (1,768)
    its frames are scored against."""

    delta: np.ndarray
    target_embedding: np.ndarray


@dataclass
class Variant:
    """One asked strength of an edit: ``face`` is None when it could not run, and ``notices`` say why."""

    name: str  # "manual", "learned" or "oracle"
    face: Face | None
    notices: list[str] = field(default_factory=list)


@dataclass
class EditResult:
    original: Face  # the unedited face (its W+ is what a further edit should start from)
    variants: list[Variant]
    notices: list[str] = field(default_factory=list)
    photo: AlignedPhoto | None = None  # for photo inputs (see Result)
    direction: Direction | None = None  # None on the slow path (no mapper); a sweep of this edit reuses it

    crop = Result.crop
