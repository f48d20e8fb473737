"""Photo and generator-output preprocessing to the CLIP input (numpy, and the differentiable torch twin):
conversions, geometry, agreement, errors."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from celeblook.errors import InputError
from celeblook.models.image_encoder import tensor_to_clip
from celeblook.preprocess import (
    CLIP_SIZE,
    OPENAI_MEAN,
    OPENAI_STD,
    crop_offsets,
    photo_to_clip,
    photos_to_clip,
    pixels_to_clip,
    resized_size,
    to_rgb,
)

HALF = (0.5, 0.5, 0.5)  # laion2b_s32b_b82k's mean and std


def smooth_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A face-like smooth RGB uint8 picture (low-frequency noise): resampling differences stay small."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(height // 32 + 2, width // 32 + 2, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


def as_generator_output(array: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> (1,3,H,W) in [-1,1], the generator's range."""
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def test_geometry_follows_torchvision_resize_and_center_crop():
    assert resized_size(1024, 1024) == (224, 224)
    assert resized_size(300, 200) == (336, 224)
    assert resized_size(200, 333) == (224, 372)  # int(333 * 224 / 200) = 372.96 -> 372
    assert crop_offsets(336, 224) == (56, 0)
    assert crop_offsets(224, 373) == (0, 74)  # round(74.5) = 74, as torchvision


@pytest.mark.parametrize("size", [(1024, 1024), (768, 1024), (1024, 600)])
def test_photo_and_tensor_paths_agree(size):
    array = smooth_image(*size)
    from_photo = photos_to_clip([Image.fromarray(array)], OPENAI_MEAN, OPENAI_STD)
    from_tensor = tensor_to_clip(as_generator_output(array), OPENAI_MEAN, OPENAI_STD).numpy()
    from_pixels = pixels_to_clip(as_generator_output(array).numpy(), OPENAI_MEAN, OPENAI_STD)
    assert from_photo.shape == from_tensor.shape == from_pixels.shape == (1, 3, CLIP_SIZE, CLIP_SIZE)
    assert from_photo.dtype == from_tensor.dtype == from_pixels.dtype == np.float32
    steps = np.asarray(OPENAI_STD, np.float32).reshape(1, 3, 1, 1) * 255  # differences in 8-bit steps
    levels = np.abs(from_photo - from_tensor) * steps
    # the photo path rounds to 8 bits after resizing (mean 0.25, max 0.5 steps); the kernels agree to < 1 step
    assert levels.mean() < 0.35
    assert levels.max() < 2.0
    # numpy (Pillow's float bicubic) and torch (antialiased bicubic, Pillow's kernel) agree without rounding
    assert (np.abs(from_pixels - from_tensor) * steps).max() < 0.05


def test_normalisation_uses_the_given_constants():
    white = Image.new("RGB", (250, 250), (255, 255, 255))
    np.testing.assert_allclose(photo_to_clip(white, HALF, HALF), np.ones((3, CLIP_SIZE, CLIP_SIZE)))
    expected = -np.asarray(OPENAI_MEAN) / np.asarray(OPENAI_STD)
    black = tensor_to_clip(-torch.ones(1, 3, 64, 64), OPENAI_MEAN, OPENAI_STD)
    np.testing.assert_allclose(black[0, :, 100, 100].numpy(), expected, rtol=1e-6)
    black = pixels_to_clip(-np.ones((1, 3, 64, 64), np.float32), OPENAI_MEAN, OPENAI_STD)
    np.testing.assert_allclose(black[0, :, 100, 100], expected, rtol=1e-5)


def test_small_tensors_are_upsampled_and_the_path_is_differentiable():
    x = torch.zeros(2, 3, 64, 96, requires_grad=True)
    out = tensor_to_clip(x * 0.5, HALF, HALF)
    assert out.shape == (2, 3, 224, 224)
    out[:, 0].sum().backward()
    assert x.grad is not None and x.grad[:, 0].abs().sum() > 0 and x.grad[:, 1:].abs().sum() == 0


def test_out_of_range_generator_pixels_are_not_clamped():
    x = torch.full((1, 3, 224, 224), 1.2, requires_grad=True)
    out = tensor_to_clip(x, HALF, HALF)
    assert torch.allclose(out, torch.full_like(out, 1.2))
    out.sum().backward()
    assert torch.all(x.grad > 0)  # gradients still flow where the generator overshoots


def test_transparency_is_composited_on_white():
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (0, 0, 32, 64))  # opaque blue left half
    rgb = np.asarray(to_rgb(rgba))
    assert rgb[10, 10].tolist() == [0, 0, 255]
    assert rgb[10, 50].tolist() == [255, 255, 255]
    la = Image.new("LA", (8, 8), (0, 0))
    assert np.asarray(to_rgb(la)).min() == 255
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.info["transparency"] = 0
    assert np.asarray(to_rgb(palette))[0, 0].tolist() == [255, 255, 255]


def test_other_modes_become_rgb():
    gray = Image.new("L", (16, 16), 200)
    assert np.asarray(to_rgb(gray))[0, 0].tolist() == [200, 200, 200]
    cmyk = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # no ink = white
    assert np.asarray(to_rgb(cmyk))[0, 0].tolist() == [255, 255, 255]
    deep = Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16))  # 16-bit PNG white, mode I;16
    assert np.asarray(to_rgb(deep))[0, 0].tolist() == [255, 255, 255]
    mono = Image.new("1", (16, 16), 1)
    assert to_rgb(mono).mode == "RGB" and np.asarray(to_rgb(mono)).min() == 255


def test_exif_orientation_is_applied():
    array = smooth_image(96, 64, seed=3)
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(array).save(buffer, format="PNG", exif=exif)
    stored = Image.open(io.BytesIO(buffer.getvalue()))
    assert stored.size == (96, 64)
    upright = Image.fromarray(array).transpose(Image.Transpose.ROTATE_270)
    assert to_rgb(stored).size == (64, 96)
    np.testing.assert_array_equal(photo_to_clip(stored, HALF, HALF), photo_to_clip(upright, HALF, HALF))


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="PIL image"):
        photos_to_clip([np.zeros((8, 8, 3))], HALF, HALF)
    with pytest.raises(InputError, match="no images"):
        photos_to_clip([], HALF, HALF)
    with pytest.raises(InputError, match=r"\(N,3,H,W\)"):
        tensor_to_clip(torch.zeros(3, 64, 64), HALF, HALF)
    with pytest.raises(InputError, match=r"\(N,3,H,W\)"):
        tensor_to_clip(torch.zeros(1, 4, 64, 64), HALF, HALF)
    with pytest.raises(InputError, match="float"):
        tensor_to_clip(torch.zeros(1, 3, 64, 64, dtype=torch.uint8), HALF, HALF)
    with pytest.raises(InputError, match=r"\(N,3,H,W\)"):
        pixels_to_clip(np.zeros((3, 64, 64), np.float32), HALF, HALF)
