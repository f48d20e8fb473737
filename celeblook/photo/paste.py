"""Paste-back: a result (inverted or edited face, in the aligned crop's framing) blended into the original photo.

The crop is a similarity transform of the photo (``AlignedFace.quad``), so the result is warped back with
its inverse and blended through a feathered ellipse over the face in FFHQ framing: the face itself comes
from the result, while hair, ears, background and everything outside the ellipse stay the photo's own
pixels, bit for bit.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import InputError
from . import imageops
from .align import AlignedFace, quad_side

# The face in FFHQ framing, as fractions of the crop's side: eyes at y ~0.47, mouth ~0.74, chin ~0.9, cheeks
# at x ~0.22 and ~0.78. The ellipse covers brows to chin and cheek to cheek.
FACE_CENTRE = (0.5, 0.58)
FACE_RADII = (0.29, 0.35)
FEATHER = 0.25  # the outer quarter of the ellipse's radius blends from the result to the photo


def face_mask(width: int, height: int, aligned: AlignedFace) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The feathered face mask over the photo, as float32 weights in [0, 1] (1 = the result) for the window
    of the photo that holds the face (exactly 0 outside the ellipse), and that window."""
    to_photo = aligned.crop_to_photo(1)  # crop coordinates as fractions of its side -> photo pixels
    to_unit = imageops.invert(to_photo)
    # the ellipse's bounding box in the photo, clipped to it
    t = np.linspace(0, 2 * np.pi, 64)
    unit = np.stack([FACE_CENTRE[0] + FACE_RADII[0] * np.cos(t), FACE_CENTRE[1] + FACE_RADII[1] * np.sin(t)], axis=1)
    outline = unit @ to_photo[:, :2].T + to_photo[:, 2]
    x0, y0 = np.floor(outline.min(axis=0)).astype(int).clip(0, [width, height])
    x1, y1 = (np.ceil(outline.max(axis=0)).astype(int) + 1).clip(0, [width, height])
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u = to_unit[0, 0] * xs + to_unit[0, 1] * ys + to_unit[0, 2]
    v = to_unit[1, 0] * xs + to_unit[1, 1] * ys + to_unit[1, 2]
    radius = np.hypot((u - FACE_CENTRE[0]) / FACE_RADII[0], (v - FACE_CENTRE[1]) / FACE_RADII[1])
    ramp = np.clip((1.0 - radius) / FEATHER, 0.0, 1.0)
    weight = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no visible edge where the blend starts or ends
    return weight.astype(np.float32), (slice(y0, y1), slice(x0, x1))


def paste_back(photo: Image.Image, aligned: AlignedFace, result: Image.Image) -> Image.Image:
    """The photo with ``result`` (any size, framed like ``aligned.image``) blended in over the face.

    ``photo`` must be the image ``aligned`` was made from. Pixels outside the face mask are unchanged.
    """
    if photo.size != aligned.photo_size:
        raise InputError(f"paste-back needs the photo the face was aligned in ({aligned.photo_size[0]}x{aligned.photo_size[1]} px), "
                         f"got {photo.width}x{photo.height}")
    if result.width != result.height:
        raise InputError(f"a result to paste back must be square (an aligned crop), got {result.width}x{result.height}")
    out = np.array(photo.convert("RGB"))
    weight, (rows, cols) = face_mask(photo.width, photo.height, aligned)
    if weight.size == 0:
        return Image.fromarray(out)
    pixels = np.asarray(result.convert("RGB"))
    side = max(16, round(quad_side(aligned.quad)))
    if pixels.shape[0] > 1.5 * side:  # shrink by area first: a bilinear warp alone would alias
        pixels = imageops.resize(pixels, (side, side), "area")
    # the result warped into the face's window of the photo
    to_window = aligned.crop_to_photo(pixels.shape[0]) - np.array([[0, 0, cols.start], [0, 0, rows.start]])
    warped = imageops.warp(pixels, to_window, (weight.shape[1], weight.shape[0]), "edge")
    window = out[rows, cols]
    blended = window + (warped.astype(np.float32) - window) * weight[..., None]
    inside = weight > 0
    window[inside] = np.rint(blended[inside]).clip(0, 255).astype(np.uint8)
    return Image.fromarray(out)
