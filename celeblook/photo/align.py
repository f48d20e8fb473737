"""FFHQ-style face alignment for uploaded photos, offline, with dlib's landmark model.

The generator only knows faces framed the way FFHQ frames them, so uploads are cropped the same way
(FFHQ's recipe, re-implemented from its description; the original script is CC BY-NC-SA):

- **faces**: dlib's HOG frontal-face detector (Boost licence) searches a copy of the photo at most
  ``DETECT_SIDE`` px long; only when that finds nothing is the photo searched at full size and then
  upsampled so that faces down to ``MIN_FACE`` px are found (dlib scans 80 px windows). The finer passes
  cost seconds on a large photo, so they run only for photos whose faces are all small.
- **landmarks**: dlib's 5-point shape predictor (public domain; ``celeblook.photo.dlib_models`` finds its
  ``.dat``): the corners of both eyes and the base of the nose. It has no mouth, so the mouth is placed below
  the eyes by a linear fit on the nose's drop (``MOUTH_FROM_NOSE``, measured against dlib's 68-point model on
  real faces; see the constant). dlib's 68-point model is trained on iBUG 300-W, whose licence excludes
  commercial use: it is only a test reference here.
- **crop**: FFHQ's oriented square from the eye centres and the mouth (so head roll is followed), rendered
  by one affine warp; where the square leaves the photo, the mirrored border is blurred and faded to the
  photo's median colour as FFHQ does, so there are no black corners and no sharp mirror seams.

``AlignedFace`` keeps the square (``quad``) so that results can be pasted back (``celeblook.photo.paste``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import dlib
import numpy as np
from PIL import Image

from ..errors import InputError
from ..preprocess import CLIP_SIZE
from . import imageops
from .dlib_models import LANDMARKS, model_path

DETECT_SIDE = 1024  # first pass: faces are searched on a copy at most this long (finds faces >= 8 % of it)
MIN_FACE = 32  # last pass: the smallest face box searched, in photo px (about ear to ear)
HOG_WINDOW = 80  # dlib's frontal detector scans 80x80 px windows: the smallest face it finds unscaled
DETECT_THRESHOLD = 0.0  # dlib's default; below it the detector also fires on patches, emblems and fur
# A detection is kept only when the detector, looking again at its upright FFHQ crop, scores it this much.
# Measured (grayscale): real faces 1.2-1.6 on that second look (the astronaut and Grace Hopper, rolled up
# to 30 degrees and scaled 0.6-3x); 37 false detections in those same photos (the mission patch, suit folds;
# first-look scores up to 0.47) at most 0.36, and at most 0.11 for those that passed DETECT_THRESHOLD;
# 89 of the 93 blurry 25 px LFW faces the detector finds pass; skimage's three-quarter profile `camera` not (-0.04).
CONFIRM_SCORE = 0.3
CONFIRM_SIZE = 160  # the second look's crop, px: the face box is then ~90 px, just above the 80 px window
CONFIRM_CENTRE = (0.5, 0.55)  # where the face box's centre falls in that crop (FFHQ framing), in sides
# The mouth's drop below the eyes, in eye distances (IOD), from the nose's drop: a least-squares fit of
# the 68-point model's mouth corners on 93 faces of scikit-image's LFW subset (median drop 1.09 IOD,
# range 0.82-1.41). Fit residual: median 0.07 IOD (0.08 for a constant 1.09), 90th percentile 0.17 (0.22).
MOUTH_FROM_NOSE = (0.75, 0.52)  # drop = 0.75 * nose drop + 0.52
MOUTH_HALF_WIDTH = 0.45  # the mouth corners either side of its centre, in IOD (FFHQ's crop uses only their mean)
# FFHQ's crop: side = 2 * max(2 * eye distance, 1.8 * eye-to-mouth), centred 0.1 eye-to-mouth below the eyes
EYE_SCALE, MOUTH_SCALE, CENTRE_SHIFT = 2.0, 1.8, 0.1
PAD_FRACTION, BLUR_FRACTION = 0.3, 0.02  # FFHQ's minimum reflect padding and edge blur, as fractions of the side
# A face is "small" when the models see it soft: the encoders read the crop at CLIP_SIZE (224 px), so the notice
# compares the face's square in the photo (the FFHQ quad's side) with that, not with the 1024 px crop shown (a view).
# Measured (Laplacian variance of the 224 px crop, photos rescaled 0.25-2x): detail falls off past 1.5x (the
# astronaut, 43 px between the eyes: quad 172 px, 1.3x, keeps 0.67 of its 2x copy's; at 1.75x 0.37, 2.6x 0.18;
# Grace Hopper, 84 px: 0.67x, none lost); so quads under 224 / 1.5 = 150 px (about 37 px between the eyes) get it.
MAX_UPSCALE = 1.5
MAX_SUPERSAMPLE = 4  # large quads are warped at up to 4x the output size, then area-averaged down

Point = tuple[float, float]


@cache
def face_detector() -> dlib.fhog_object_detector:
    return dlib.get_frontal_face_detector()


@cache
def landmark_model() -> dlib.shape_predictor:
    return dlib.shape_predictor(model_path(LANDMARKS))


@dataclass(frozen=True)
class DetectedFace:
    """One face in a photo, in the photo's pixels (x, y); "left" is the image's left."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    eye_left: Point
    eye_right: Point
    mouth_left: Point  # estimated from the eyes and the nose (see MOUTH_FROM_NOSE)
    mouth_right: Point
    quad: tuple[Point, Point, Point, Point]  # FFHQ's crop square: top-left, bottom-left, bottom-right, top-right
    score: float  # the detector's confidence (dlib HOG margin; > 0 is a detection)

    @property
    def eye_distance(self) -> float:
        return math.dist(self.eye_left, self.eye_right)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)


def _rot90(v: np.ndarray) -> np.ndarray:
    """(x, y) -> (-y, x): a quarter turn that takes "right" to "down" in image coordinates."""
    return np.array([-v[1], v[0]])


def ffhq_quad(eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """FFHQ's oriented crop square for these four points, as 4 corners (TL, BL, BR, TR), shape (4, 2)."""
    eye_left, eye_right, mouth_left, mouth_right = (np.asarray(p, np.float64) for p in (eye_left, eye_right, mouth_left, mouth_right))
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_avg
    # the horizontal axis blends the eye line with the perpendicular of the eye-mouth line
    x = eye_to_eye - _rot90(eye_to_mouth)
    x = x / np.hypot(*x) * max(EYE_SCALE * np.hypot(*eye_to_eye), MOUTH_SCALE * np.hypot(*eye_to_mouth))
    y = _rot90(x)
    centre = eye_avg + CENTRE_SHIFT * eye_to_mouth
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def _face_from_landmarks(box: np.ndarray, parts: np.ndarray, score: float) -> DetectedFace:
    """The 5-point model's points (0-1: image-right eye corners, 2-3: image-left eye corners, 4: nose base)
    -> eye centres, the estimated mouth corners and FFHQ's quad."""
    eye_left, eye_right = parts[2:4].mean(axis=0), parts[0:2].mean(axis=0)
    eye_avg = (eye_left + eye_right) / 2
    iod = float(np.hypot(*(eye_right - eye_left)))
    across = (eye_right - eye_left) / iod
    down = _rot90(across)
    nose_drop = float((parts[4] - eye_avg) @ down) / iod
    mouth = eye_avg + (MOUTH_FROM_NOSE[0] * nose_drop + MOUTH_FROM_NOSE[1]) * iod * down
    mouth_left, mouth_right = mouth - MOUTH_HALF_WIDTH * iod * across, mouth + MOUTH_HALF_WIDTH * iod * across
    quad = ffhq_quad(eye_left, eye_right, mouth_left, mouth_right)
    return DetectedFace(
        box=tuple(float(v) for v in box), eye_left=_point(eye_left), eye_right=_point(eye_right),
        mouth_left=_point(mouth_left), mouth_right=_point(mouth_right), quad=tuple(_point(p) for p in quad), score=float(score),
    )


def _point(p: np.ndarray) -> Point:
    return float(p[0]), float(p[1])


def _search(gray: np.ndarray, scale: float) -> list[DetectedFace]:
    """Confirmed faces found in the photo resized by ``scale``; landmarks are read at that scale, then mapped back."""
    height, width = gray.shape
    if scale == 1.0:
        scaled = gray
    else:
        scaled = imageops.resize(gray, (max(1, round(width * scale)), max(1, round(height * scale))), "area" if scale < 1 else "linear")
    rects, scores, _ = face_detector().run(scaled, 0, DETECT_THRESHOLD)
    faces = []
    for rect, score in zip(rects, scores):
        parts = np.array([(p.x, p.y) for p in landmark_model()(scaled, rect).parts()], np.float64)
        box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float64)
        found = _face_from_landmarks(box, parts, score)
        if _confirmation(scaled, found) >= CONFIRM_SCORE:
            faces.append(_face_from_landmarks(box / scale, (parts + 0.5) / scale - 0.5, score))
    return faces


def _confirmation(gray: np.ndarray, face: DetectedFace) -> float:
    """The detector's score on the face's own upright FFHQ crop, for a box centred where FFHQ framing puts
    the face (-inf when there is none): real faces score higher once upright and framed, emblems and
    textures do not (see CONFIRM_SCORE)."""
    crop = warp_quad(gray, np.array(face.quad), CONFIRM_SIZE)
    rects, scores, _ = face_detector().run(crop, 0, -1.0)
    centre = (CONFIRM_CENTRE[0] * CONFIRM_SIZE, CONFIRM_CENTRE[1] * CONFIRM_SIZE)
    centred = [s for r, s in zip(rects, scores)
               if math.dist(((r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2), centre) < 0.15 * CONFIRM_SIZE]
    return max(centred, default=-math.inf)


def detection_scales(width: int, height: int) -> list[float]:
    """The photo scales searched in turn, coarse to fine, until one finds a face."""
    scales = [min(1.0, DETECT_SIDE / max(width, height)), 1.0, HOG_WINDOW / MIN_FACE]
    return sorted(set(scales))


def detect_faces(image: Image.Image) -> list[DetectedFace]:
    """Every face dlib's detector finds in the photo, largest first; empty when there is none."""
    return _detect(_gray(np.asarray(image.convert("RGB"))))


def _gray(rgb: np.ndarray) -> np.ndarray:
    """Faces are searched in grayscale: dlib's landmark model reads intensities only, and its detector runs a
    third faster than on colour."""
    return np.ascontiguousarray(imageops.gray(rgb))


def _detect(gray: np.ndarray) -> list[DetectedFace]:
    for scale in detection_scales(gray.shape[1], gray.shape[0]):
        faces = _search(gray, scale)
        if faces:
            return sorted(faces, key=lambda f: f.area, reverse=True)
    return []


def quad_side(quad: np.ndarray) -> float:
    return float(np.hypot(*(np.asarray(quad)[3] - np.asarray(quad)[0])))


def crop_to_photo(quad: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine map from pixel coordinates of a size x size crop to the photo's pixel coordinates."""
    quad = np.asarray(quad, np.float64)
    return imageops.affine(np.array([[0, 0], [0, size], [size, 0]], np.float64), quad[[0, 1, 3]])


def photo_to_crop(quad: np.ndarray, size: int) -> np.ndarray:
    """The inverse of ``crop_to_photo``."""
    return imageops.invert(crop_to_photo(quad, size))


def warp_quad(image: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """The quad warped to a size x size image (mirrored where it leaves the photo, as FFHQ's reflect padding).

    A quad much larger than the output is warped at up to 4x the size and area-averaged down, so large photos
    do not alias (FFHQ supersamples the same way).
    """
    supersample = int(min(MAX_SUPERSAMPLE, max(1, round(quad_side(quad) / size))))  # bilinear is fine down to ~1.5x
    work = size * supersample
    warped = imageops.warp(image, photo_to_crop(quad, work), (work, work), "reflect")
    return warped if supersample == 1 else imageops.resize(warped, (size, size), "area")


def render_quad(rgb: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Render the quad as a size x size RGB uint8 crop, the way FFHQ renders its crops.

    Outside the photo the crop mirrors it (FFHQ's reflect padding); there the mirror is blurred and faded to
    the photo's median colour with distance, in FFHQ's proportions: blur sigma 2 % of the side, full blur at
    the photo's edge fading out over the inner third of the padding's width, and the median colour fading in
    across the padding (at least 30 % of the side).
    """
    quad = np.asarray(quad, np.float64)
    warped = warp_quad(rgb, quad, size)
    mask = _outside_mask(rgb.shape[1], rgb.shape[0], quad, size)
    if mask is None:
        return warped
    return _fade_outside(warped, mask, rgb, BLUR_FRACTION * size)


def _outside_mask(width: int, height: int, quad: np.ndarray, size: int) -> np.ndarray | None:
    """FFHQ's padding mask over the crop's pixels: 0 at the photo's edge, 1 at the padding's outer edge,
    negative inside the photo; None when the quad stays inside the photo (nothing to fade)."""
    m = crop_to_photo(quad, size)
    # the photo positions of the crop's corner pixels, and how far they reach past each side of the photo
    # (left, top, right, bottom) in photo px
    corners = np.array([[0, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1], [size - 1, 0, 1]], np.float64) @ m.T
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    beyond = np.array([-lo[0], -lo[1], hi[0] - (width - 1), hi[1] - (height - 1)])
    if beyond.max() <= 0:
        return None
    pad = np.maximum(beyond, PAD_FRACTION * quad_side(quad))
    cy, cx = np.mgrid[0:size, 0:size].astype(np.float32)
    m = m.astype(np.float32)
    sx = m[0, 0] * cx + m[0, 1] * cy + m[0, 2]
    sy = m[1, 0] * cx + m[1, 1] * cy + m[1, 2]
    return np.maximum.reduce([-sx / pad[0], -sy / pad[1], (sx - (width - 1)) / pad[2], (sy - (height - 1)) / pad[3]])


def _fade_outside(warped: np.ndarray, mask: np.ndarray, rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Blend the blurred crop and then the photo's median colour in where ``mask`` says (FFHQ's weights)."""
    image = warped.astype(np.float32)
    # a Gaussian this wide is as good at a quarter of the resolution and 16x cheaper
    small = imageops.resize(image, (round(image.shape[1] / 4), round(image.shape[0] / 4)), "area")
    blurred = imageops.resize(imageops.gaussian_blur(small, sigma / 4), warped.shape[1::-1], "linear")
    image += (blurred - image) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)[..., None]
    median = np.median(rgb[::4, ::4].reshape(-1, 3), axis=0).astype(np.float32)
    image += (median - image) * np.clip(mask, 0.0, 1.0)[..., None]
    return np.rint(image).clip(0, 255).astype(np.uint8)


def centre_quad(width: int, height: int) -> np.ndarray:
    """The largest centred square of the photo, as a quad."""
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return np.array([[x0, y0], [x0, y0 + side], [x0 + side, y0 + side], [x0 + side, y0]], np.float64)


@dataclass(frozen=True)
class AlignedFace:
    image: Image.Image  # RGB, size x size
    quad: np.ndarray  # (4, 2) the crop square in the photo: top-left, bottom-left, bottom-right, top-right
    photo_size: tuple[int, int]  # (width, height) of the photo the quad lives in
    faces: tuple[DetectedFace, ...] = ()  # every face found, largest first (empty when already aligned)
    chosen: int | None = None  # the index in ``faces`` that was cropped
    notices: list[str] = field(default_factory=list)

    def crop_to_photo(self, size: int | None = None) -> np.ndarray:
        """2x3 affine map from pixels of a crop of ``size`` (default: this crop's) to the photo's pixels."""
        return crop_to_photo(self.quad, size or self.image.width)


def align_face(image: Image.Image, size: int = 1024, face: int | None = None, already_aligned: bool = False,
               label: str = "the photo") -> AlignedFace:
    """Crop and rotate a photo to FFHQ framing at size x size.

    ``face`` picks one of the detected faces (largest first; default the largest). ``already_aligned`` skips
    detection and takes the centred square (for crops that are already FFHQ-like, e.g. faces made by this
    app). When no face is found an InputError names ``label`` and suggests that switch.
    """
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    notices: list[str] = []
    if already_aligned:
        quad = centre_quad(image.width, image.height)
        if image.width != image.height:
            notices.append(f"{label} is marked as already aligned: using its centred square")
        return AlignedFace(Image.fromarray(render_quad(rgb, quad, size)), quad, image.size, notices=notices)
    faces = tuple(_detect(_gray(rgb)))
    if not faces:
        raise InputError(
            f"no face found in {label}: use an upright photo with a clear, frontal face, or mark it as "
            "already aligned to use its centred square as it is"
        )
    chosen = 0 if face is None else face
    if not 0 <= chosen < len(faces):
        raise InputError(f"face {face} asked for, but {label} has {len(faces)} face(s): pick 0 to {len(faces) - 1}")
    if len(faces) > 1:
        notices.append(f"{len(faces)} faces found in {label}: using face {chosen} ({'the largest' if chosen == 0 else 'as asked'})")
    picked = faces[chosen]
    quad = np.array(picked.quad, np.float64)
    if quad_side(quad) * MAX_UPSCALE < CLIP_SIZE:
        notices.append(f"the face is small ({picked.eye_distance:.0f} px between the eyes): the models see it enlarged "
                       f"{CLIP_SIZE / quad_side(quad):.1f}x, so the result will be soft; a closer or larger photo helps")
    return AlignedFace(Image.fromarray(render_quad(rgb, quad, size)), quad, image.size, faces, chosen, notices)


def alignment_record(aligned: AlignedFace, photo_size: tuple[int, int] | None = None) -> dict:
    """The JSON-ready record of an alignment: every face found and the index used.

    Coordinates are in the pixels of the photo the face was aligned in, or scaled to ``photo_size`` (e.g. the
    original photo's size after EXIF orientation, when the app worked on a downscaled copy).
    """
    scale = np.ones(2) if photo_size is None else np.array(photo_size, np.float64) / aligned.photo_size

    def pixels(points) -> list:
        return np.round(np.reshape(points, (-1, 2)) * scale, 2).reshape(np.shape(points)).tolist()

    faces = [
        {"box": pixels(f.box), "eye_left": pixels(f.eye_left), "eye_right": pixels(f.eye_right),
         "mouth_left": pixels(f.mouth_left), "mouth_right": pixels(f.mouth_right), "quad": pixels(f.quad)}
        for f in aligned.faces
    ]
    return {"faces": faces, "chosen": aligned.chosen}
