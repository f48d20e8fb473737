"""Real photos whose licences allow tests, and the reference crop they are measured against.

Photos ship inside packages in requirements.txt (nothing is committed or downloaded):
- scikit-image: ``astronaut`` (Eileen Collins, NASA, public domain), ``camera`` (CC0, a small three-quarter
  profile), and non-faces ``coffee``, ``chelsea`` (a cat), ``rocket``, ``horse`` (CC0 / public domain).
- matplotlib: ``grace_hopper.jpg`` (the official US Navy portrait of Grace Hopper, public domain per the
  Wikimedia Commons page named in the file's JPEG comment).

The reference is what FFHQ and the inversion encoders use: dlib's HOG detector + dlib's 68-point landmarks
(trained on iBUG 300-W, non-commercial: a test reference only, never the product's model) + FFHQ's recipe on
eye centres (means of points 36-41 and 42-47) and mouth corners (48 and 54).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

from celeblook.photo.align import ffhq_quad
from celeblook.photo.dlib_models import packaged_copy

# where the 68-point model puts the astronaut's eye centres in skimage's 512x512 photo (measured here)
ASTRONAUT_EYES = ((203.17, 101.5), (246.5, 104.17))


def skimage_photo(name: str) -> Image.Image:
    from skimage import data

    array = np.asarray(getattr(data, name)())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array).convert("RGB")


def astronaut() -> Image.Image:
    return skimage_photo("astronaut")


def grace_hopper() -> Image.Image:
    spec = importlib.util.find_spec("matplotlib")  # found by path: importing matplotlib is not needed
    path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as image:
        return image.convert("RGB")


def group_photo() -> Image.Image:
    """Two real people side by side, 1300x700: Grace Hopper (larger, face 0) right, the astronaut left (face 1)."""
    canvas = Image.new("RGB", (1300, 700), (90, 100, 110))
    canvas.paste(astronaut(), (40, 100))
    canvas.paste(grace_hopper().resize((430, 504)), (800, 100))
    return canvas


@cache
def _reference_models() -> tuple:
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(packaged_copy("shape_predictor_68_face_landmarks.dat")))


def reference_points(image: Image.Image, near: tuple[float, float]) -> np.ndarray | None:
    """(3, 2): the reference's eye_left, eye_right and mouth centre for the face whose box centre is nearest
    to ``near`` (dlib upsampling the photo once, as FFHQ-style scripts do), or None when it finds no face.

    Nearest, not largest: the reference detector also boxes the astronaut's mission patch, sometimes larger.
    """
    detector, predictor = _reference_models()
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    rects = detector(rgb, 1)
    if not rects:
        return None
    rect = min(rects, key=lambda r: np.hypot(r.center().x - near[0], r.center().y - near[1]))
    p = np.array([(q.x, q.y) for q in predictor(rgb, rect).parts()], np.float64)
    return np.stack([p[36:42].mean(axis=0), p[42:48].mean(axis=0), (p[48] + p[54]) / 2])


def reference_quad(points: np.ndarray) -> np.ndarray:
    mouth = points[2]
    return ffhq_quad(points[0], points[1], mouth, mouth)  # FFHQ uses only the corners' mean


def crop_errors(quad: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Where the reference's eye centres and mouth land in our crop versus in the reference crop, in the
    reference crop's eye distances (IOD): (eye_left, eye_right, mouth)."""
    ref = reference_quad(points)

    def in_crop(q: np.ndarray) -> np.ndarray:
        axes = np.column_stack([q[3] - q[0], q[1] - q[0]])
        return np.linalg.solve(axes, (points - q[0]).T).T

    ours, theirs = in_crop(np.asarray(quad)), in_crop(ref)
    return np.hypot(*(ours - theirs).T) / np.hypot(*(theirs[1] - theirs[0]))
