"""The interface the CLIP teacher's image tower and the distilled student share.

An ``ImageEncoder`` maps a CLIP input tensor (N,3,224,224), normalised with the teacher tag's mean/std
(see celeblook.preprocess), to unit-norm (N,embed_dim) embeddings in ``forward``; ``embed_images`` and
``embed_tensor`` add the two preprocessing paths on top. ``forward`` alone is what ONNX export and
distillation use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from ..errors import InputError
from ..preprocess import CLIP_SIZE, crop_offsets, photos_to_clip, resized_size


class ImageEncoder(nn.Module):
    graph = "image_encoder"  # the exported ONNX graph that runs this encoder (celeblook.export.onnx)

    def __init__(self, mean: Sequence[float], std: Sequence[float], embed_dim: int = 768):
        super().__init__()
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        self.embed_dim = embed_dim
        self.image_size = CLIP_SIZE

    def forward(self, pixels: Tensor) -> Tensor:  # (N,3,224,224) normalised -> (N,embed_dim) unit norm
        raise NotImplementedError

    @torch.no_grad()
    def embed_images(self, images: Sequence[Image.Image]) -> Tensor:
        """PIL pictures -> (N,embed_dim) unit-norm embeddings."""
        return self(torch.from_numpy(photos_to_clip(images, self.mean, self.std)).to(self.device))

    def embed_tensor(self, x: Tensor) -> Tensor:
        """Generator output in [-1,1], (N,3,H,W) of any size -> (N,embed_dim) unit norm; differentiable in x."""
        return self(tensor_to_clip(x, self.mean, self.std).to(self.device))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


def tensor_to_clip(x: Tensor, mean: Sequence[float], std: Sequence[float], size: int = CLIP_SIZE) -> Tensor:
    """Generator output (N,3,H,W) in [-1,1] -> (N,3,size,size) float32, normalised; differentiable.

    celeblook.preprocess.pixels_to_clip's steps in torch: [0,1] without clamping (gradients reach slightly
    out-of-range pixels), torch's antialiased bicubic (Pillow's kernel), the same centre crop.
    """
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise InputError(f"expected an image tensor of shape (N,3,H,W), got {shape}")
    if not x.is_floating_point():
        raise InputError(f"expected a float image tensor in [-1,1], got dtype {x.dtype}")
    pixels = (x.float() + 1.0) / 2.0
    height, width = x.shape[-2:]
    new_width, new_height = resized_size(width, height, size)
    if (new_height, new_width) != (height, width):
        pixels = F.interpolate(pixels, size=(new_height, new_width), mode="bicubic", align_corners=False, antialias=True)
    left, top = crop_offsets(new_width, new_height, size)
    pixels = pixels[:, :, top : top + size, left : left + size]
    shape = (3, 1, 1)
    return (pixels - pixels.new_tensor(mean).view(shape)) / pixels.new_tensor(std).view(shape)


# shared by the encoder factories


@contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build modules with weights drawn from ``seed`` without touching the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def one_line(err: BaseException) -> str:
    """The first line of an exception's message, for a one-line WeightsError."""
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
