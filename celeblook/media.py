"""Images out: 8-bit conversion, PNG files and looping GIFs.

GIFs are bounded (frame count, side and encoded bytes) so a request can never make the server build an
unbounded animation in memory or on disk.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .files import atomic_write_bytes
from .limits import MAX_GIF_FRAMES

# --- GIF -------------------------------------------------------------------------------------------------

MAX_GIF_SIDE = 512
MAX_GIF_BYTES = 8 * 2**20
MIN_GIF_SIDE = 64  # below this a GIF that is still too many bytes is refused rather than shrunk further
GIF_DURATION_MS = (20, 2000)  # browsers play frames shorter than 20 ms at 100 ms


def loop_frames(frames: Sequence[Image.Image], ping_pong: bool) -> list[Image.Image]:
    """The frames of one loop; ping-pong plays them forward then back without repeating the two ends."""
    frames = list(frames)
    return frames + frames[-2:0:-1] if ping_pong else frames


@dataclass(frozen=True)
class EncodedGif:
    """A GIF as made: its bytes, longer side and frames per loop, and what differs from the request (show
    ``notices`` to the person who asked for it); ``path``: where ``save_gif`` wrote it."""

    data: bytes
    side: int
    frames: int
    notices: list[str]
    path: Path | None = None


def encode_gif(
    frames: Sequence[Image.Image | np.ndarray],
    duration_ms: int = 80,
    ping_pong: bool = False,
    size: int | None = None,
    max_bytes: int = MAX_GIF_BYTES,
) -> EncodedGif:
    """An endlessly looping GIF of the frames, at most ``size`` (and ``MAX_GIF_SIDE``) px a side.

    When the encoded GIF is over ``max_bytes`` it is re-encoded smaller until it fits, and a notice says so:
    every frame is kept (dropping frames would change the animation's smoothness and length), so a GIF that
    noisy or that long comes back smaller than asked rather than choppier.
    """
    images, side, notices = checked_frames(frames, duration_ms, ping_pong, size)
    fitted = side
    while True:
        data = _encode(images, fitted, duration_ms)
        if len(data) <= max_bytes:
            break
        # bytes grow with the area: jump close to the budget at once, then keep shrinking by at least 25%
        fitted = int(fitted * min(0.75, 0.95 * math.sqrt(max_bytes / len(data))))
        if fitted < MIN_GIF_SIDE:
            raise InputError(f"the GIF does not fit in {max_bytes // 1024} KB even at {MIN_GIF_SIDE} px: use fewer frames")
    if fitted < side:
        notices.append(f"the GIF is {fitted} px instead of {side} px so that its {len(images)} frames stay under "
                       f"{_kilobytes(max_bytes)}: fewer frames make a bigger GIF")
    return EncodedGif(data, fitted, len(images), notices)


def checked_frames(
    frames: Sequence[Image.Image | np.ndarray], duration_ms: int, ping_pong: bool, size: int | None, what: str = "GIF"
) -> tuple[list[Image.Image], int, list[str]]:
    """The bounds every animation keeps (a GIF's and a video clip's, ``what``): the frames of one loop as
    images, the side they are made at and a notice when that is less than ``size``."""
    if len(frames) == 0:
        raise InputError(f"a {what} needs at least one frame")
    if not GIF_DURATION_MS[0] <= duration_ms <= GIF_DURATION_MS[1]:
        raise InputError(f"frame duration must be {GIF_DURATION_MS[0]}..{GIF_DURATION_MS[1]} ms, got {duration_ms}")
    if size is not None and not MIN_GIF_SIDE <= size:
        raise InputError(f"{what} size must be at least {MIN_GIF_SIDE} px, got {size}")
    images = loop_frames([f if isinstance(f, Image.Image) else Image.fromarray(f) for f in frames], ping_pong)
    if len(images) > MAX_GIF_FRAMES:
        raise InputError(f"a {what} may have at most {MAX_GIF_FRAMES} frames (ping-pong doubles them), got {len(images)}")
    side = min(size or MAX_GIF_SIDE, MAX_GIF_SIDE, max(images[0].size))
    notices = [f"the {what} is {side} px: {_why_smaller(size, images[0].size, what)}"] if size and side < size else []
    return images, side, notices


def _why_smaller(asked: int, frame_size: tuple[int, int], what: str) -> str:
    if asked > MAX_GIF_SIDE:
        return f"{what}s are at most {MAX_GIF_SIDE} px"
    return f"its frames are only {frame_size[0]}x{frame_size[1]} px"


def _kilobytes(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:g} MB" if n_bytes >= 2**20 else f"{n_bytes / 1024:g} KB"


def scaled(images: list[Image.Image], side: int, even: bool = False) -> list[Image.Image]:
    """RGB copies of the frames with their longer side ``side`` px (``even``: both sides rounded down to even,
    as 4:2:0 video needs)."""
    width, height = images[0].size
    target = [max(1, round(width * side / max(width, height))), max(1, round(height * side / max(width, height)))]
    if even:
        target = [max(2, t - t % 2) for t in target]
    return [im.convert("RGB").resize(tuple(target), Image.Resampling.LANCZOS) for im in images]


def _encode(images: list[Image.Image], side: int, duration_ms: int) -> bytes:
    """GIF bytes of the frames scaled so their longer side is ``side`` px."""
    resized = scaled(images, side)
    # Pillow's default is median-cut per frame (~0.5 s per 512 px frame); the octree quantiser with
    # dithering is ~30x faster and measured as close to the source
    indexed = [im.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.FLOYDSTEINBERG) for im in resized]
    buffer = io.BytesIO()
    indexed[0].save(buffer, format="GIF", save_all=True, append_images=indexed[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()


def save_gif(
    frames: Sequence[Image.Image | np.ndarray],
    path: str | Path,
    duration_ms: int = 80,
    ping_pong: bool = False,
    size: int | None = None,
    max_bytes: int = MAX_GIF_BYTES,
) -> EncodedGif:
    """Write a bounded, looping GIF (see ``encode_gif``) under a temporary name, then rename it to ``path``:
    a reader never sees half a file (unique paths, so that no served file is replaced, are the caller's)."""
    path = Path(path)
    gif = encode_gif(frames, duration_ms, ping_pong, size, max_bytes)
    atomic_write_bytes(path, gif.data)
    return replace(gif, path=path)


# --- 8-bit and PNG ---------------------------------------------------------------------------------------


def png_bytes(image: Image.Image) -> bytes:
    """The image as PNG file bytes (for writers that write atomically)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def to_uint8(images) -> np.ndarray:
    """Generator output (N,3,H,W) in nominal [-1,1] (torch or numpy) -> (N,H,W,3) uint8; non-finite is refused.

    Clamp to [-1,1], then round((x + 1) * 127.5): -1 -> 0, 0 -> 128 (127.5 rounds to even), 1 -> 255.
    """
    array = images.detach().cpu().float().numpy() if hasattr(images, "detach") else np.asarray(images, np.float32)
    if array.ndim != 4 or array.shape[1] != 3:
        raise InputError(f"expected images of shape (N,3,H,W), got {tuple(array.shape)}")
    if not np.isfinite(array).all():  # never a silently black or white picture
        raise InputError("the generator gave NaN or infinite pixel values: the latent is far outside its range")
    scaled = (np.clip(array, -1.0, 1.0) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def save_pngs(images: np.ndarray, out_dir: str | Path, names: Sequence[str] | None = None) -> list[Path]:
    """Write (N,H,W,3) uint8 images as RGB PNGs: ``000.png``, ``001.png``, ... unless ``names`` are given."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(names) if names is not None else [f"{i:03d}.png" for i in range(len(images))]
    if len(names) != len(images):
        raise InputError(f"{len(images)} images but {len(names)} file names")
    paths = [out_dir / name for name in names]
    for image, path in zip(images, paths):
        Image.fromarray(np.ascontiguousarray(image)).save(path)
    return paths
