"""The few image operations the alignment and the paste-back need, on Pillow and numpy.

They replace OpenCV, whose wheel alone was 136 of the runtime install's 733 MiB (docs/install.md). Each follows
the OpenCV call it replaced in its conventions (pixel centres at integer coordinates, matrices from source to
destination pixels, the same border rules), so results agree with it to rounding; tests/test_imageops.py measures
how closely against OpenCV itself (installed with the dev extras).

Images are numpy arrays, (H, W) or (H, W, C), uint8 or float32.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

Border = Literal["reflect", "edge"]  # reflect: ...cb|abc|ba... (OpenCV's BORDER_REFLECT_101); edge: ...aa|abc|cc...


def gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of a uint8 RGB image in OpenCV's fixed point (14-bit weights, rounded): ``cv2.cvtColor(rgb,
    cv2.COLOR_RGB2GRAY)`` to one level (its vector path rounds a few pixels in 1000 the other way)."""
    r, g, b = (rgb[..., i] for i in range(3))
    return ((r * np.uint32(4899) + g * np.uint32(9617) + b * np.uint32(1868) + (1 << 13)) >> 14).astype(np.uint8)


def affine(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 affine map that takes three points ``src`` (3, 2) to ``dst`` (3, 2)."""
    a = np.hstack([np.asarray(src, np.float64), np.ones((3, 1))])
    return np.linalg.solve(a, np.asarray(dst, np.float64)).T


def invert(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine map."""
    linear = np.linalg.inv(np.asarray(m, np.float64)[:, :2])
    return np.hstack([linear, -linear @ np.asarray(m, np.float64)[:, 2:]])


def _planes(image: np.ndarray) -> list[Image.Image]:
    """One 32-bit float Pillow image (mode F) per channel: Pillow's 8-bit samplers truncate (a bias of half a level)
    and its 8-bit resize rounds between its two passes, so everything is computed in float and rounded once."""
    data = image.astype(np.float32)
    return [Image.fromarray(np.ascontiguousarray(data[..., c]) if data.ndim == 3 else data, "F")
            for c in range(image.shape[2] if image.ndim == 3 else 1)]


def _stack(planes: list[Image.Image], like: np.ndarray) -> np.ndarray:
    """The planes as one array of ``like``'s layout and type."""
    arrays = [np.asarray(p) for p in planes]
    return _like(np.stack(arrays, axis=2) if like.ndim == 3 else arrays[0], like)


def _like(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Float results as ``like``'s type, C-ordered (dlib reads rows of pixels); to uint8 with halves rounded up, as
    OpenCV's fixed point does."""
    out = np.floor(values + 0.5).clip(0, 255).astype(np.uint8) if like.dtype == np.uint8 else values.astype(np.float32)
    return np.ascontiguousarray(out)


def resize(image: np.ndarray, size: tuple[int, int], smooth: Literal["area", "linear"]) -> np.ndarray:
    """The image at ``size`` (width, height): "area" (for shrinking) averages the pixels each output pixel covers,
    partly covered ones by their covered fraction (OpenCV's INTER_AREA; Pillow's BOX counts a pixel in or out by its
    centre, up to 6 levels away); "linear" (for enlarging) interpolates between the nearest four (INTER_LINEAR)."""
    if smooth == "linear":
        return _stack([p.resize(size, Image.Resampling.BILINEAR) for p in _planes(image)], image)
    out = np.asarray(image, np.float64)
    for axis, n in ((0, size[1]), (1, size[0])):
        out = _area(out, n, axis)
    return _like(out, image)


def _area(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``x`` shrunk to ``n`` samples along ``axis``: output i is the mean of the input over [i s, (i + 1) s), s = in / n,
    read off the running sum (exact, one pass)."""
    rows = np.ascontiguousarray(np.moveaxis(x, axis, 0), np.float64)
    total = np.empty((len(rows) + 1, *rows.shape[1:]))
    total[0] = 0.0
    for i, row in enumerate(rows):  # row by row: numpy's cumsum across rows is several times slower
        np.add(total[i], row, out=total[i + 1])
    edges = np.arange(n + 1) * (len(rows) / n)
    whole = np.minimum(np.floor(edges).astype(int), len(rows) - 1)
    frac = (edges - whole).reshape(-1, *[1] * (x.ndim - 1))
    running = total[whole] + frac * rows[whole]  # the sum of the input up to each edge
    return np.moveaxis((running[1:] - running[:-1]) * (n / len(rows)), 0, axis)


def _fold(index: np.ndarray, n: int, border: Border) -> np.ndarray:
    """Indices outside 0..n-1 taken back inside by the border rule."""
    if border == "edge" or n == 1:
        return index.clip(0, n - 1)
    period = 2 * (n - 1)
    index = np.abs(index) % period
    return np.where(index >= n, period - index, index)


def warp(image: np.ndarray, m: np.ndarray, size: tuple[int, int], border: Border) -> np.ndarray:
    """The image under the 2x3 affine map ``m`` (source pixels -> output pixels), bilinear, on a ``size`` (width,
    height) canvas; where the map reaches past the image, ``border`` says what is seen there (cv2.warpAffine)."""
    width, height = size
    back = invert(m)  # output pixel -> source pixel, as the sampler needs
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], np.float64) @ back.T
    # only the window of the source the output samples, 2 px of margin, its outside filled by the border rule
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 3
    window = image[np.ix_(_fold(np.arange(y0, y1), image.shape[0], border), _fold(np.arange(x0, x1), image.shape[1], border))]
    # Pillow maps output pixel centres (x + 0.5, pixel i spanning [i, i + 1)) to input coordinates of the same kind,
    # OpenCV pixel indices to indices: the same map, shifted by half a pixel on both sides (and into the window)
    linear = back[:, :2]
    offset = back[:, 2] - (x0, y0) + 0.5 - linear @ (0.5, 0.5)
    data = (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])
    return _stack([p.transform(size, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR) for p in _planes(window)], image)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A float32 image blurred by a Gaussian of ``sigma`` px, mirrored at the edges: cv2.GaussianBlur(image, (0, 0),
    sigma) on float images (its kernel: 8 sigma + 1 taps, odd)."""
    radius = int(round(sigma * 8 + 1)) // 2
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = np.asarray(image, np.float32)
    for axis in (0, 1):
        index = _fold(np.arange(-radius, out.shape[axis] + radius), out.shape[axis], "reflect")
        padded = np.take(out, index, axis=axis).astype(np.float64)
        moved = np.moveaxis(padded, axis, 0)
        acc = sum(taps[k] * moved[k : k + out.shape[axis]] for k in range(len(taps)))
        out = np.moveaxis(acc, 0, axis).astype(np.float32)
    return out
