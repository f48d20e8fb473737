"""A drawn, shaded frontal face that dlib's HOG face detector finds (for tests that need any face), and a
helper that pastes it rolled and scaled into a noisy "wild" photo with known eye positions."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

EYES = ((194.0, 232.0), (318.0, 232.0))  # eye centres in the 512 px drawing
MOUTH = (256.0, 372.0)  # the centre of the drawn mouth


def draw_face(seed: int = 0) -> np.ndarray:
    """512x512 RGB uint8: a face made of blurred blobs where a face has shadows and highlights."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float64)

    def blob(cx, cy, rx, ry, amp):
        return amp * np.exp(-(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2))

    light = np.full((512, 512), 150.0)
    light[((xx - 256) / 140) ** 2 + ((yy - 270) / 185) ** 2 < 1] = 190
    light = cv2.GaussianBlur(light, (0, 0), 6)
    light += blob(256, 100, 170, 70, -110)  # hair
    for dx in (-62, 62):
        light += blob(256 + dx, 228, 42, 24, -75) + blob(256 + dx, 232, 14, 9, -60) + blob(256 + dx, 195, 40, 8, -70)
    light += blob(256, 260, 16, 55, 25) + blob(256, 318, 30, 10, -45) + blob(256, 372, 50, 12, -70)
    light += blob(146, 420, 40, 120, -30) + blob(366, 420, 40, 120, -30)
    light += rng.normal(0, 3, light.shape)
    return (light.clip(0, 255)[..., None] * np.array([1.1, 0.9, 0.8])).clip(0, 255).astype(np.uint8)


def wild_photo(angle: float, scale: float = 0.8, offset=(500, 250), size=(1280, 960)) -> tuple[Image.Image, np.ndarray]:
    """The face rolled by ``angle`` degrees and scaled, on a blurred-noise background; and its eye centres."""
    rng = np.random.default_rng(1)
    canvas = cv2.GaussianBlur(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), (0, 0), 3)
    matrix = cv2.getRotationMatrix2D((256, 256), angle, scale)
    matrix[:, 2] += offset
    mask = cv2.warpAffine(np.full((512, 512), 255, np.uint8), matrix, size) > 0
    canvas[mask] = cv2.warpAffine(draw_face(), matrix, size)[mask]
    eyes = np.array([matrix[:, :2] @ np.array(e) + matrix[:, 2] for e in EYES])
    return Image.fromarray(canvas), eyes
