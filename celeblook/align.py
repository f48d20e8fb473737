"""FFHQ-style face alignment for uploaded photos, offline.

The generator only knows faces framed the way FFHQ frames them, so uploads are cropped the same way:
from two eye centres and the mouth, FFHQ's recipe builds an oriented square around the face (re-implemented
here from its description; the original script is CC BY-NC-SA). The landmarks come from OpenCV's Haar
cascades, which ship inside the opencv wheel, so nothing is downloaded at run time: a face box, the two
eyes inside it (estimated from the box when the eye cascade misses), and the mouth found by the smile
cascade near where the eyes put it (estimated from the eyes when it is not found).
The quad is a similarity transform, so one ``cv2.warpAffine`` renders it (milliseconds, not PIL's QUAD
transform at 4096 px).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image

from .errors import InputError

DETECT_SIDE = 640  # photos are searched for faces at this size: Haar cascades need no more
ROLL_ANGLES = (0.0, -20.0, 20.0)  # the frontal cascade misses faces rolled by more than ~15 degrees
# Where the Haar frontal-face box puts the eyes, as fractions of the box (measured on frontal faces).
EYE_X_IN_BOX = (0.33, 0.67)
EYE_Y_IN_BOX = 0.38
# FFHQ's mean face has the mouth about 0.9 eye distances below the eyes (its crops put the eyes at
# ~0.25 of the side apart and the mouth ~0.22 below them).
MOUTH_BELOW_EYES = 0.9
MOUTH_HALF_WIDTH = 0.4  # mouth corners either side of the mouth centre, in eye distances


@dataclass(frozen=True)
class Landmarks:
    """The four points FFHQ alignment uses, in photo pixels (x, y); "left" is the image's left."""

    eye_left: np.ndarray
    eye_right: np.ndarray
    mouth_left: np.ndarray
    mouth_right: np.ndarray

    @classmethod
    def from_eyes(cls, eye_left: np.ndarray, eye_right: np.ndarray, mouth: np.ndarray | None = None) -> Landmarks:
        """Eyes plus the mouth centre; without one the mouth is estimated below the eyes' midpoint,
        perpendicular to the eye line. FFHQ's crop uses only the corners' mean, so their spread is nominal."""
        eye_left, eye_right = np.asarray(eye_left, np.float64), np.asarray(eye_right, np.float64)
        eye_to_eye = eye_right - eye_left
        if mouth is None:
            mouth = expected_mouth(eye_left, eye_right)
        mouth = np.asarray(mouth, np.float64)
        return cls(eye_left, eye_right, mouth - MOUTH_HALF_WIDTH * eye_to_eye, mouth + MOUTH_HALF_WIDTH * eye_to_eye)


def expected_mouth(eye_left: np.ndarray, eye_right: np.ndarray) -> np.ndarray:
    """Where FFHQ's mean face has its mouth centre, given the two eyes."""
    return (eye_left + eye_right) / 2 + MOUTH_BELOW_EYES * _rot90(eye_right - eye_left)


@dataclass
class AlignedFace:
    image: Image.Image  # RGB, size x size
    method: str  # "face + eyes + mouth", "face + eyes", "face box" or "centre crop"
    quad: np.ndarray  # (4, 2) corners in the photo: top-left, bottom-left, bottom-right, top-right
    notices: list[str] = field(default_factory=list)


def _rot90(v: np.ndarray) -> np.ndarray:
    """(x, y) -> (-y, x): a quarter turn that takes "right" to "down" in image coordinates."""
    return np.array([-v[1], v[0]])


def ffhq_quad(landmarks: Landmarks) -> np.ndarray:
    """FFHQ's oriented crop square for these landmarks, as 4 corners (TL, BL, BR, TR)."""
    eye_avg = (landmarks.eye_left + landmarks.eye_right) / 2
    eye_to_eye = landmarks.eye_right - landmarks.eye_left
    mouth_avg = (landmarks.mouth_left + landmarks.mouth_right) / 2
    eye_to_mouth = mouth_avg - eye_avg
    # the horizontal axis blends the eye line with the perpendicular of the eye-mouth line
    x = eye_to_eye - _rot90(eye_to_mouth)
    x = x / np.hypot(*x) * max(2.0 * np.hypot(*eye_to_eye), 1.8 * np.hypot(*eye_to_mouth))
    y = _rot90(x)
    centre = eye_avg + 0.1 * eye_to_mouth
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def warp_quad(rgb: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Render the quad as a size x size image; borders are mirrored, as FFHQ's reflect padding does.

    A quad much larger than the output is first warped at up to 4x the size and then area-averaged down,
    so large photos do not alias (FFHQ supersamples the same way).
    """
    side = float(np.hypot(*(quad[3] - quad[0])))
    supersample = int(min(4, max(1, math.ceil(side / size))))
    work = size * supersample
    src = quad[[0, 1, 3]].astype(np.float32)
    dst = np.array([[0, 0], [0, work], [work, 0]], np.float32)
    warped = cv2.warpAffine(
        rgb, cv2.getAffineTransform(src, dst), (work, work), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
    return warped if supersample == 1 else cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=None)
def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():
        raise RuntimeError(f"OpenCV's bundled cascade {name} could not be loaded; reinstall opencv-python-headless")
    return cascade


FACE_PATCH = 320  # the face box is resampled to this many px before looking for eyes
EYE_TOLERANCE = 0.12  # how far (in face boxes) a detected eye may sit from the usual spot
MOUTH_TOLERANCE = 0.35  # how far (in eye distances) a detected mouth may sit from where the eyes put it
MOUTH_MIN_NEIGHBOURS = 10  # the smile cascade fires on shadows; demand many overlapping hits


def _affine3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _best_face(gray: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The most confident frontal face box (x, y, w, h) and its cascade score, or None."""
    min_face = max(24, min(gray.shape) // 8)
    boxes, _, weights = _cascade("haarcascade_frontalface_default.xml").detectMultiScale3(
        gray, 1.1, 5, minSize=(min_face, min_face), outputRejectLevels=True
    )
    if len(boxes) == 0:
        return None
    best = int(np.argmax(weights))
    return np.asarray(boxes[best], np.float64), float(np.ravel(weights)[best])


def _eyes_in_patch(patch: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The two eye centres in a face patch (the face box resampled to a square), or None when the eye
    cascade finds no plausible pair."""
    upper = patch[: int(FACE_PATCH * 0.6)]
    boxes = _cascade("haarcascade_eye.xml").detectMultiScale(upper, 1.1, 3, minSize=(FACE_PATCH // 10,) * 2)
    centres = [np.array([x + w / 2, y + h / 2]) for x, y, w, h in boxes]
    expected = [np.array([ex * FACE_PATCH, EYE_Y_IN_BOX * FACE_PATCH]) for ex in EYE_X_IN_BOX]
    left = [c for c in centres if c[0] < FACE_PATCH / 2]
    right = [c for c in centres if c[0] >= FACE_PATCH / 2]
    if not left or not right:
        return None
    # of several candidates, the ones nearest to where eyes sit in a frontal face box
    eye_l = min(left, key=lambda c: np.hypot(*(c - expected[0])))
    eye_r = min(right, key=lambda c: np.hypot(*(c - expected[1])))
    # a real face box holds its eyes close to the usual spots (rolls beyond ~10 degrees are turned away first)
    if max(np.hypot(*(eye_l - expected[0])), np.hypot(*(eye_r - expected[1]))) > EYE_TOLERANCE * FACE_PATCH:
        return None
    return eye_l, eye_r


def _mouth_in_patch(patch: np.ndarray, eyes: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
    """The mouth centre in a face patch (OpenCV's bundled mouth/smile cascade), or None when nothing plausible
    is found near where the eyes put it."""
    expected = expected_mouth(*eyes)
    top = int(max(0.0, min(expected[1] - 0.25 * FACE_PATCH, FACE_PATCH - 1)))
    boxes = _cascade("haarcascade_smile.xml").detectMultiScale(
        patch[top:], 1.1, MOUTH_MIN_NEIGHBOURS, minSize=(FACE_PATCH // 6, FACE_PATCH // 12)
    )
    centres = [np.array([x + w / 2, top + y + h / 2]) for x, y, w, h in boxes]
    if not centres:
        return None
    best = min(centres, key=lambda c: np.hypot(*(c - expected)))
    eye_distance = np.hypot(*(eyes[1] - eyes[0]))
    return best if np.hypot(*(best - expected)) <= MOUTH_TOLERANCE * eye_distance else None


def detect_landmarks(rgb: np.ndarray) -> tuple[Landmarks, str] | None:
    """Landmarks of a face in an RGB uint8 photo and how they were found, or None.

    Faces are searched on a downscaled copy turned by each of ``ROLL_ANGLES`` in turn; the eyes are then
    searched in the face box resampled from the full-resolution photo. The first face whose eyes are found
    wins (a face without eyes is more often a false detection); failing that, the most confident face box.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    scale = min(1.0, DETECT_SIDE / max(rgb.shape[:2]))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    small = cv2.equalizeHist(small)
    h, w = small.shape
    fallback = None  # (score, photo -> patch transform) of the best face whose eyes were not found
    for angle in ROLL_ANGLES:
        rotation = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        turned = small if angle == 0 else cv2.warpAffine(small, rotation, (w, h), borderMode=cv2.BORDER_REPLICATE)
        found = _best_face(turned)
        if found is None:
            continue
        (fx, fy, fw, fh), score = found
        # photo -> face patch: downscale, turn, then map the face box onto [0, FACE_PATCH]^2
        to_box = np.array([[FACE_PATCH / fw, 0, -fx * FACE_PATCH / fw], [0, FACE_PATCH / fh, -fy * FACE_PATCH / fh]])
        to_patch = _affine3(to_box) @ _affine3(rotation) @ np.diag([scale, scale, 1.0])
        patch = cv2.warpAffine(gray, to_patch[:2], (FACE_PATCH, FACE_PATCH), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        patch = cv2.equalizeHist(patch)
        eyes = _eyes_in_patch(patch)
        if eyes is not None:
            mouth = _mouth_in_patch(patch, eyes)
            method = "face + eyes" if mouth is None else "face + eyes + mouth"
            return _landmarks_from_patch(eyes, to_patch, mouth), method
        if fallback is None or score > fallback[0]:
            fallback = (score, to_patch)
    if fallback is None:
        return None
    box_eyes = tuple(np.array([ex * FACE_PATCH, EYE_Y_IN_BOX * FACE_PATCH]) for ex in EYE_X_IN_BOX)
    return _landmarks_from_patch(box_eyes, fallback[1]), "face box"


def _landmarks_from_patch(eyes: tuple[np.ndarray, np.ndarray], to_patch: np.ndarray,
                          mouth: np.ndarray | None = None) -> Landmarks:
    back = np.linalg.inv(to_patch)
    eye_l, eye_r = (back[:2, :2] @ e + back[:2, 2] for e in eyes)
    return Landmarks.from_eyes(eye_l, eye_r, None if mouth is None else back[:2, :2] @ mouth + back[:2, 2])


def centre_quad(width: int, height: int) -> np.ndarray:
    """The largest centred square of the photo, as a quad."""
    side = min(width, height)
    x0, y0 = (width - side) / 2, (height - side) / 2
    return np.array([[x0, y0], [x0, y0 + side], [x0 + side, y0 + side], [x0 + side, y0]], np.float64)


def align_face(photo: Image.Image, size: int = 1024, already_aligned: bool = False, face: int | None = None,
               label: str = "the photo") -> AlignedFace:
    """Crop and rotate a photo to FFHQ framing at size x size.

    ``already_aligned`` skips detection and takes the centred square (for crops that are already FFHQ-like,
    e.g. faces made by this app). When no face is found, an InputError says so and suggests that switch.
    ``face``: which detected face (this detector reports one); ``label`` names the photo in messages.
    """
    if face not in (None, 0):
        raise InputError(f"{label} has 1 detected face; face must be 0, got {face}")
    rgb = np.asarray(photo.convert("RGB"))
    notices: list[str] = []
    if already_aligned:
        quad, method = centre_quad(photo.width, photo.height), "centre crop"
        if photo.width != photo.height:
            notices.append("photo marked as already aligned: using its centred square")
    else:
        found = detect_landmarks(rgb)
        if found is None:
            raise InputError(
                f"no face found in {label}: use a frontal, well-lit face, or tick 'photo is already aligned' "
                "to use the centred square as it is"
            )
        landmarks, method = found
        quad = ffhq_quad(landmarks)
        if method == "face box":
            notices.append("eyes not detected: the crop was estimated from the face box and may be off")
    return AlignedFace(Image.fromarray(warp_quad(rgb, quad, size)), method, quad, notices)
