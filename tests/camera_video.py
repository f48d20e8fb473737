"""Camera videos for the browser tests and the live benchmark: YUV4MPEG2 files that Chromium's fake capture device
plays (``--use-file-for-fake-video-capture``), made from real photos (tests/real_photos.py).

``two_people()``: scikit-image's astronaut and matplotlib's Grace Hopper (both public domain) in turn, each still,
then shifted and rolled; a marker block in the frame's corners says who is in view (top-left: black = the
astronaut, white = Grace Hopper) and whether the frame moves (top-right: white = moving).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from real_photos import astronaut, grace_hopper


def y4m(rgb: np.ndarray, frames: int = 2) -> bytes:
    """A YUV4MPEG2 video (4:2:0, BT.601 full range) showing ``rgb`` still: what Chromium's fake camera plays."""
    h, w = rgb.shape[:2]
    x = rgb.astype(np.float64)
    y = 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]
    u = 128 + 0.564 * (x[..., 2] - y)
    v = 128 + 0.713 * (x[..., 0] - y)
    half = lambda c: c.reshape(h // 2, 2, w // 2, 2).mean((1, 3))  # noqa: E731
    planes = [np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in (y, half(u), half(v))]
    frame = b"FRAME\n" + b"".join(planes)
    return f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames


W, H, FPS = 320, 240, 10
FACE = 180  # px: the face crop's side in the frame (eyes ~40 px apart)
MARK = 8  # px: corner marker blocks (top-left: black = the astronaut, white = Grace Hopper; top-right: white = moving)
# each photo's eye centres and mouth centre (dlib's 68 points, as tests/real_photos.py measures them)
PEOPLE = {"astronaut": (astronaut, (203.2, 101.5), (246.5, 104.2), (223.5, 140.0)),
          "hopper": (grace_hopper, (223.7, 192.3), (305.3, 189.2), (266.5, 279.0))}
STILL, MOVING = 40, 20  # frames of each part: 4 s still, then 2 s shifted and rolled


def face_square(name: str) -> Image.Image:
    """The person's face, centred, FACE px square (the eyes 0.22 of the side apart)."""
    photo, left, right, mouth = PEOPLE[name]
    image = photo()
    eyes = np.add(left, right) / 2
    centre = eyes + 0.35 * (np.asarray(mouth) - eyes)
    half = 2.3 * np.hypot(*np.subtract(right, left))
    box = tuple(int(round(v)) for v in (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))
    return image.crop(box).resize((FACE, FACE), Image.BICUBIC)


def frame(face: Image.Image, who: int, moving: bool, dx: float = 0, roll: float = 0) -> np.ndarray:
    canvas = Image.new("RGB", (W, H), (96, 104, 112))
    turned = face.rotate(roll, resample=Image.BICUBIC, fillcolor=(96, 104, 112))
    canvas.paste(turned, (int((W - FACE) / 2 + dx), (H - FACE) // 2))
    rgb = np.asarray(canvas).copy()
    rgb[:MARK, :MARK] = 255 * who
    rgb[:MARK, -MARK:] = 255 * moving
    return rgb


def two_people() -> list[np.ndarray]:
    frames = []
    for who, name in enumerate(PEOPLE):
        face = face_square(name)
        frames += [frame(face, who, False)] * STILL
        frames += [frame(face, who, True, 25 * np.sin(2 * np.pi * k / MOVING), 10 * np.sin(4 * np.pi * k / MOVING))
                   for k in range(MOVING)]
    return frames


def two_people_y4m() -> bytes:
    """The two-people video as a Y4M at FPS frames a second."""
    return y4m_of(two_people())


def y4m_of(frames: list[np.ndarray]) -> bytes:
    head, *rest = [y4m(f, frames=1) for f in frames]
    return head.replace(b"F10:1", f"F{FPS}:1".encode()) + b"".join(r.split(b"\n", 1)[1] for r in rest)
