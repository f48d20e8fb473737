"""Images -> the CLIP input tensor: (N,3,224,224) float32, normalised with the teacher tag's mean/std.

Two paths that agree (tests/test_preprocess.py checks it), both numpy, so the torch-free runtime shares them:

* ``photos_to_clip`` for uploads (PIL): EXIF orientation applied; converted to 8-bit RGB (transparency
  composited on white, 16-bit greyscale scaled down, CMYK / palette / greyscale converted by Pillow);
  shortest side resized to 224 with Pillow's bicubic filter (which widens its kernel when shrinking, i.e.
  antialiased); centre crop; scaled to [0,1]; normalised.
* ``pixels_to_clip`` for generator output in [-1,1] of any size: mapped to [0,1] (not clamped); the same
  resize with Pillow's bicubic on 32-bit float planes (no rounding to 8 bits); the same centre crop; normalised.
  Its differentiable twin for the slow paths and training is ``celeblook.models.image_encoder.tensor_to_clip``
  (torch's antialiased bicubic, which uses Pillow's kernel, a=-0.5).

Both follow open_clip's evaluation transform (bicubic ``Resize(224)`` on the shortest side + ``CenterCrop``):
the long side is ``int(long * 224 / short)`` and the crop offset is ``round((side - 224) / 2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

from .errors import InputError

CLIP_SIZE = 224
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's default when a tag names none
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WHITE = (255, 255, 255)

Triple = tuple[float, float, float]


def resized_size(width: int, height: int, size: int = CLIP_SIZE) -> tuple[int, int]:
    """(width, height) after scaling the shortest side to ``size`` (torchvision's ``Resize(int)`` rule)."""
    if width <= height:
        return size, max(size, int(height * size / width))
    return max(size, int(width * size / height)), size


def crop_offsets(width: int, height: int, size: int = CLIP_SIZE) -> tuple[int, int]:
    """(left, top) of the centred ``size`` square (torchvision's ``center_crop`` rounding)."""
    return int(round((width - size) / 2.0)), int(round((height - size) / 2.0))


def to_rgb(image: Image.Image) -> Image.Image:
    """An uploaded picture as upright 8-bit RGB: EXIF orientation applied, transparency on white."""
    if not isinstance(image, Image.Image):
        raise InputError(f"expected a PIL image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise InputError(f"image is empty ({image.width}x{image.height})")
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, TypeError, KeyError, SyntaxError):
        pass  # a malformed EXIF block must not stop the upload: keep the stored orientation
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):  # 16/32-bit greyscale: Pillow would clip at 255
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array * (255.0 / peak) + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV, F: Pillow's own conversions


def photo_to_pixels(image: Image.Image, size: int) -> np.ndarray:
    """An aligned photo -> (1,3,size,size) float32 in [-1,1], the generator's range (Lanczos resize): what the
    refiner compares with the reconstruction (the page does the same)."""
    image = to_rgb(image).resize((size, size), Image.Resampling.LANCZOS)
    return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None].copy()


def photo_to_clip(image: Image.Image, mean: Sequence[float], std: Sequence[float], size: int = CLIP_SIZE) -> np.ndarray:
    """One picture -> (3,size,size) float32, normalised."""
    image = to_rgb(image)
    width, height = resized_size(image.width, image.height, size)
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = crop_offsets(width, height, size)
    image = image.crop((left, top, left + size, top + size))
    pixels = (np.asarray(image, dtype=np.float32) / 255.0).transpose(2, 0, 1)
    return normalize(pixels, mean, std)


def photos_to_clip(
    images: Sequence[Image.Image], mean: Sequence[float], std: Sequence[float], size: int = CLIP_SIZE
) -> np.ndarray:
    """Pictures -> (N,3,size,size) float32, normalised."""
    if isinstance(images, Image.Image):
        images = [images]
    if len(images) == 0:
        raise InputError("no images given")
    return np.stack([photo_to_clip(image, mean, std, size) for image in images])


def pixels_to_clip(x: np.ndarray, mean: Sequence[float], std: Sequence[float], size: int = CLIP_SIZE) -> np.ndarray:
    """Generator output (N,3,H,W) in [-1,1] -> (N,3,size,size) float32, normalised."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != 3:
        shape = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise InputError(f"expected an image array of shape (N,3,H,W), got {shape}")
    pixels = (x.astype(np.float32) + 1.0) / 2.0
    height, width = x.shape[-2:]
    new_width, new_height = resized_size(width, height, size)
    if (new_height, new_width) != (height, width):
        pixels = np.stack([[np.asarray(Image.fromarray(plane, "F").resize((new_width, new_height), Image.Resampling.BICUBIC))
                            for plane in image] for image in pixels])
    left, top = crop_offsets(new_width, new_height, size)
    return normalize(pixels[:, :, top : top + size, left : left + size], mean, std)


def normalize(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(..., 3, H, W) in [0,1] -> (pixels - mean) / std per channel, float32."""
    shape = (3, 1, 1)
    return ((pixels - np.asarray(mean, np.float32).reshape(shape)) / np.asarray(std, np.float32).reshape(shape)).astype(np.float32)
