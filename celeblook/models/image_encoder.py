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
from PIL import Image
from torch import Tensor, nn

from ..preprocess import CLIP_SIZE, photos_to_clip, tensor_to_clip


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
        return self(photos_to_clip(images, self.mean, self.std).to(self.device))

    def embed_tensor(self, x: Tensor) -> Tensor:
        """Generator output in [-1,1], (N,3,H,W) of any size -> (N,embed_dim) unit norm; differentiable in x."""
        return self(tensor_to_clip(x, self.mean, self.std).to(self.device))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


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
