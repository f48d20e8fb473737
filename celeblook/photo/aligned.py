"""A photo made ready for the models: loaded (celeblook.photo.load) and its chosen face cropped the FFHQ way
(celeblook.photo.align), with the chosen person's face descriptor (celeblook.photo.identity) computed once.

Needs no models: ``python -m celeblook align`` and the pipeline share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..limits import FACE_INDEX, check_flag
from .align import AlignedFace, align_face, render_quad
from .identity import face_descriptor
from .load import load_photo

DEFAULT_LABEL = "the photo"


@dataclass
class AlignedPhoto:
    """A photo as loaded (upright RGB, at most photo.MAX_SIDE) and the FFHQ crop of its chosen face."""

    photo: Image.Image
    aligned: AlignedFace
    notices: list[str]
    full_size: tuple[int, int] | None = None  # the photo's size upright before downscaling (photo.Photo.full_size)

    @cached_property
    def descriptor(self) -> np.ndarray | None:
        """The chosen person's face descriptor (celeblook.photo.identity), computed once for every result compared to it."""
        return face_descriptor(self.aligned.image)

    def thumbnails(self, size: int = 128) -> list[Image.Image]:
        """Every face found in the photo, cropped the FFHQ way (largest first: the index a request picks)."""
        rgb = np.ascontiguousarray(np.asarray(self.photo))
        return [Image.fromarray(render_quad(rgb, np.asarray(face.quad, np.float64), size)) for face in self.aligned.faces]



def align_photo(source: str | Path | Image.Image | np.ndarray | None, aligned: object = False, face: object = None,
                label: str = DEFAULT_LABEL, size: int = 1024) -> AlignedPhoto:
    """Load a photo (bombs, EXIF, modes, downscaling) and crop its chosen face (``face``: index, largest first) the
    FFHQ way; ``aligned``: the photo is already such a crop; ``label`` names the photo in messages."""
    already = check_flag("already aligned", aligned)
    face = None if face is None else FACE_INDEX.check(face)
    try:
        loaded = load_photo(source)
    except InputError as err:  # say which photo, when there are two
        raise (InputError(f"{label}: {err}") if label != DEFAULT_LABEL else err) from None
    found = align_face(loaded.image, size=size, already_aligned=already, face=face, label=label)
    return AlignedPhoto(loaded.image, found, loaded.notices + found.notices, loaded.full_size)
