"""Uploaded photos -> a sane RGB PIL image, or one clear line saying what is wrong with the file.

Everything a person (or an API client) can send is handled here, before any model sees it: files that
are not images, corrupt or truncated files, decompression bombs, huge images (downscaled), tiny ones
(refused), transparency, grayscale / 16-bit / CMYK / palette modes, EXIF rotation and animations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

MAX_FILE_BYTES = 30 * 1024 * 1024  # a phone photo is ~5 MB; more is refused before decoding
MAX_PIXELS = 50_000_000  # width*height read from the header; larger is treated as a decompression bomb
MAX_SIDE = 2048  # bigger photos are downscaled (alignment and the encoders need far less)
MIN_SIDE = 64  # smaller photos hold no usable face


@dataclass
class Photo:
    image: Image.Image  # RGB
    notices: list[str] = field(default_factory=list)  # what was changed on the way in, for the person


def load_photo(source: str | Path | Image.Image | np.ndarray | None) -> Photo:
    """Open and normalise an uploaded photo: RGB, upright, first frame, at most ``MAX_SIDE`` px a side."""
    if source is None:
        raise InputError("no photo given: upload a photo (or take one with the webcam) first")
    if isinstance(source, np.ndarray):
        return _normalise(_from_array(source), [])
    if isinstance(source, Image.Image):
        _check_pixels(source.size)
        return _normalise(source, [])
    return _normalise(*_open_file(Path(source)))


def _open_file(path: Path) -> tuple[Image.Image, list[str]]:
    if not path.is_file():
        raise InputError(f"photo file not found: {path.name}")
    n_bytes = path.stat().st_size
    if n_bytes == 0:
        raise InputError("the uploaded file is empty")
    if n_bytes > MAX_FILE_BYTES:
        raise InputError(f"the file is {n_bytes / 2**20:.0f} MB; photos up to {MAX_FILE_BYTES // 2**20} MB are accepted")
    notices: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)  # reads the header only
            _check_pixels(image.size)
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
                notices.append(f"animated image ({image.n_frames} frames): using its first frame")
            if image.format == "JPEG":  # let libjpeg decode at a reduced scale: huge JPEGs never hit full size
                image.draft("RGB", (MAX_SIDE, MAX_SIDE))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"the image is too large to decode safely (over {MAX_PIXELS // 1_000_000} megapixels)") from None
    except UnidentifiedImageError:
        raise InputError("the file is not an image this app can read (use JPEG, PNG, WebP, GIF, BMP or TIFF)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # what Pillow raises on truncated or broken data
        raise InputError(f"the image file is corrupt or truncated ({err})") from None
    return image, notices


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"an image array must be HxW, HxWx3 or HxWx4, got shape {tuple(array.shape)}")
    _check_pixels((array.shape[1], array.shape[0]))
    if array.dtype != np.uint8:
        finite = np.nan_to_num(array.astype(np.float64))
        scale = 255.0 if finite.max(initial=0) <= 1.0 else 1.0  # float images in [0, 1]
        array = (finite * scale).clip(0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise InputError(
            f"the image is {width}x{height} px, over the {MAX_PIXELS // 1_000_000}-megapixel limit: downscale it first"
        )


def _normalise(image: Image.Image, notices: list[str]) -> Photo:
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block is not worth refusing the photo over
        upright = image
        notices.append("could not read the photo's EXIF orientation; using it as stored")
    if upright is not image and upright.size != image.size:
        notices.append("rotated upright according to the photo's EXIF orientation")
    rgb = _to_rgb(upright, notices)
    width, height = rgb.size
    if min(width, height) < MIN_SIDE:
        raise InputError(f"the photo is only {width}x{height} px; at least {MIN_SIDE} px per side is needed")
    if max(width, height) > MAX_SIDE:
        rgb.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        notices.append(f"downscaled from {width}x{height} to {rgb.width}x{rgb.height} px")
    return Photo(rgb, notices)


def _to_rgb(image: Image.Image, notices: list[str]) -> Image.Image:
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float grayscale: stretch to 8 bits
        values = np.asarray(image, dtype=np.float64)
        lo, hi = float(values.min()), float(values.max())
        values = (values - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(values)
        image, mode = Image.fromarray(values.astype(np.uint8)), "L"
    if (mode == "P" and "transparency" in image.info) or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            notices.append("transparent areas were filled with white")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1"):
        notices.append("grayscale photo: the result will still be in colour")
    if mode == "CMYK":
        notices.append("CMYK photo converted to RGB")
    return image.convert("RGB")
