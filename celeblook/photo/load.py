"""Uploaded photos -> a sane RGB PIL image, or one clear line saying what is wrong with the file.

Everything a person (or an API client) can send is handled here, before any model sees it: files that
are not images, corrupt or truncated files, decompression bombs, huge images (downscaled), tiny ones
(refused), transparency, grayscale / 16-bit / CMYK / palette modes, EXIF rotation and animations.

Only the formats in ``FORMATS`` are opened, by their own Pillow plugins alone: their headers give the size
without decoding a pixel (container formats that decode at open, such as ICO, are never tried), and of an
animated or multi-page file only the first frame is ever decoded.

Memory per upload is bounded from the header, before anything is decoded. Most JPEGs are decoded by
libjpeg at 1/2, 1/4 or 1/8 scale (Pillow's draft mode), so even a 150-megapixel one costs tens of MB.
Everything else, progressive JPEGs included (libjpeg buffers all their coefficients whatever the scale),
is decoded whole and is therefore limited to ``MAX_PIXELS`` (WebP, which libwebp holds three times over, to
``MAX_WEBP_PIXELS``); the full-size image is then held once, reduced to ``MAX_SIDE`` before any copy (EXIF turn,
mode conversion) is made.
"""

from __future__ import annotations

import ctypes
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

MAX_FILE_BYTES = 30 * 1024 * 1024  # a phone photo is ~5 MB; more is refused before decoding
# width*height from the header, for images decoded whole; larger is treated as a decompression bomb.
# Pillow holds up to 4 bytes a pixel (8 while an RGBA or palette image is reduced): 200-400 MB at the limit.
MAX_PIXELS = 50_000_000
# JPEGs that libjpeg decodes at reduced scale (sequential, single scan): 108-megapixel phone photos fit.
# Below Pillow's own hard limit (2 x Image.MAX_IMAGE_PIXELS, 179 MP), which refuses anything larger.
MAX_SCALED_JPEG_PIXELS = 150_000_000
# Pillow decodes every WebP with libwebp's animation decoder, which holds two canvases of its own (~15 bytes a
# pixel in all): WebP costs at this size what the other formats cost at MAX_PIXELS
MAX_WEBP_PIXELS = 16_000_000
MAX_SIDE = 2048  # bigger photos are downscaled (alignment and the encoders need far less)
MIN_SIDE = 64  # smaller photos hold no usable face
SEQUENTIAL_JPEG_FRAMES = (0xC0, 0xC1, 0xC9)  # SOF markers libjpeg can decode row by row at reduced scale
# the formats opened: the Pillow plugins of these names in capitals (JPEG's includes MPO, a phone's JPEG with more
# pictures after the first); no other plugin ever sees an upload
FORMATS = ("JPEG", "PNG", "WebP", "GIF", "BMP", "TIFF")
FORMAT_NAMES = f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
PIXEL_LIMITS = (f"photos up to {MAX_PIXELS // 10**6} megapixels are accepted, standard JPEGs up to "
                f"{MAX_SCALED_JPEG_PIXELS // 10**6}")


@dataclass
class Photo:
    image: Image.Image  # RGB
    full_size: tuple[int, int]  # (width, height) upright, before any downscaling: the pixels of the file as shown
    notices: list[str] = field(default_factory=list)  # what was changed on the way in, for the person


def load_photo(source: str | Path | Image.Image | np.ndarray | None) -> Photo:
    """Open and normalise an uploaded photo: RGB, upright, first frame, at most ``MAX_SIDE`` px a side."""
    if source is None:
        raise InputError("no photo given: upload a photo (or take one with the webcam) first")
    if isinstance(source, np.ndarray):
        return _normalise(_from_array(source), [])
    if isinstance(source, Image.Image):
        _check_pixels(source.size, MAX_PIXELS)
        return _normalise(source, [])
    photo = _normalise(*_open_file(Path(source)))
    release_freed_memory()  # the full-size decode is gone by now
    return photo


def _open_file(path: Path) -> tuple[Image.Image, list[str], tuple[int, int]]:
    """The decoded image (a JPEG possibly at reduced scale), notices, and the size its header gives."""
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
            # Pillow warns from 89 MP on; the limits that apply are checked below (its error at 179 MP stays)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=[name.upper() for name in FORMATS])  # reads the header only
        with image:  # closes the file, also when a check below refuses it
            jpeg = image.format in ("JPEG", "MPO")  # MPO: a phone's JPEG with extra pictures after the first
            scaled = jpeg and _decodes_at_reduced_scale(image.fp)
            _check_pixels(image.size, *_pixel_limit(image.format, scaled))
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
                if image.format != "MPO":
                    notices.append(f"animated image ({image.n_frames} frames): using its first frame")
            original = image.size
            if scaled:  # the largest of 1/8, 1/4, 1/2 and full scale that is still at least the size kept
                image.draft("RGB", _fitted(original))
            image.load()
    except Image.DecompressionBombError:
        raise InputError(f"the image is too large to decode safely: {PIXEL_LIMITS}") from None
    except UnidentifiedImageError:
        raise InputError(f"the file is not an image this app can read (use {FORMAT_NAMES})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # what Pillow raises on truncated or broken data
        raise InputError(f"the image file is corrupt or truncated ({err})") from None
    return image, notices, original


def _decodes_at_reduced_scale(fp: BinaryIO) -> bool:
    """Whether libjpeg can decode this JPEG at reduced scale row by row: a sequential DCT frame whose first
    scan holds every component. For progressive, lossless or multi-scan files it buffers every coefficient
    of the full-size image instead. Markers it cannot follow count as no (the stricter limit applies)."""
    position = fp.tell()
    try:
        fp.seek(2)  # after the start-of-image marker
        components = 0
        while True:
            marker = fp.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                return False
            kind = marker[1]
            if kind == 0xFF:  # a fill byte before the marker
                fp.seek(-1, 1)
                continue
            if kind == 0x01 or 0xD0 <= kind <= 0xD7:  # markers without a segment
                continue
            length = int.from_bytes(fp.read(2), "big")
            segment = fp.read(max(length - 2, 0))
            if length < 3 or len(segment) != length - 2:
                return False
            if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):  # a frame header (SOFn)
                if kind not in SEQUENTIAL_JPEG_FRAMES or len(segment) < 6:
                    return False
                components = segment[5]
            elif kind == 0xDA:  # the first scan
                return 0 < components == segment[0]
    finally:
        fp.seek(position)


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled down to fit ``MAX_SIDE`` x ``MAX_SIDE``, keeping its aspect ratio."""
    scale = min(1.0, MAX_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _downscaled(image: Image.Image) -> Image.Image:
    """A new image at most ``MAX_SIDE`` a side (box-reduced by whole factors first, then Lanczos)."""
    if image.mode in ("P", "PA", "1"):  # these resize by nearest neighbour only
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "L" if image.mode == "1" else "RGB")
    return image.resize(_fitted(image.size), Image.Resampling.LANCZOS, reducing_gap=2.0)


def release_freed_memory() -> None:
    """Hand freed pages back to the system (a full-size decode, a request's buffers). glibc keeps what a worker
    thread freed in its arena, so a server would otherwise hold hundreds of MB for good (no-op elsewhere)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _from_array(array: np.ndarray) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"an image array must be HxW, HxWx3 or HxWx4, got shape {tuple(array.shape)}")
    _check_pixels((array.shape[1], array.shape[0]), MAX_PIXELS)
    if array.dtype != np.uint8:
        finite = np.nan_to_num(array.astype(np.float64))
        scale = 255.0 if finite.max(initial=0) <= 1.0 else 1.0  # float images in [0, 1]
        array = (finite * scale).clip(0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _pixel_limit(image_format: str | None, scaled: bool) -> tuple[int, str, str]:
    """The pixel limit of an opened file, what it applies to and the advice, for ``_check_pixels``."""
    if scaled:
        return MAX_SCALED_JPEG_PIXELS, "", "downscale it"
    if image_format in ("JPEG", "MPO"):
        return MAX_PIXELS, " for progressive JPEGs", "save it as a standard JPEG or downscale it"
    if image_format == "WEBP":
        return MAX_WEBP_PIXELS, " for WebP", "save it as a JPEG or downscale it"
    return MAX_PIXELS, "", "downscale it"


def _check_pixels(size: tuple[int, int], limit: int, which: str = "", advice: str = "downscale it") -> None:
    width, height = size
    if width * height > limit:
        raise InputError(f"the image is {width}x{height} px, over the {limit // 10**6}-megapixel limit{which}: {advice} first")


def _normalise(image: Image.Image, notices: list[str], original: tuple[int, int] | None = None) -> Photo:
    """RGB, upright, at most ``MAX_SIDE`` a side; ``original``: the size before any reduced-scale decode."""
    width, height = original or image.size
    if min(width, height) < MIN_SIDE:
        raise InputError(f"the photo is only {width}x{height} px; at least {MIN_SIDE} px per side is needed")
    if max(image.size) > MAX_SIDE:
        image = _downscaled(image)  # before any full-size copy
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block is not worth refusing the photo over
        upright = image
        notices.append("could not read the photo's EXIF orientation; using it as stored")
    if upright is not image and upright.size != image.size:
        notices.append("rotated upright according to the photo's EXIF orientation")
        width, height = height, width
    rgb = _to_rgb(upright, notices)
    if max(width, height) > MAX_SIDE:
        notices.append(f"downscaled from {width}x{height} to {rgb.width}x{rgb.height} px")
    return Photo(rgb, (width, height), notices)


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
