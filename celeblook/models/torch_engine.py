"""The torch models behind celeblook.engine's numpy interface: what the full install runs by default.

Every call runs without gradients on the models' device; arrays come in as numpy and go back as float32
numpy, so the pipeline's code is the same for this engine and for the ONNX Runtime one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import WeightsError
from .clip import ClipTeacher
from .image_encoder import ImageEncoder
from .mapper import Mapper
from .mobilestylegan import Generator
from .refiner import Refiner
from .strength import StrengthPredictor


class TorchEngine:
    def __init__(self, generator: Generator, text_encoder: ClipTeacher, image_encoder: ImageEncoder,
                 mapper: Mapper | None, strength: StrengthPredictor | None, refiner: Refiner | None = None):
        self.generator, self.text_encoder, self.image_encoder = generator, text_encoder, image_encoder
        self.mapper, self.strength_head, self.refiner = mapper, strength, refiner
        self.w_avg = self.generator.w_avg.detach().float().cpu().numpy()
        self.e_scale = float(mapper.e_scale) if mapper is not None else 1.0
        config = getattr(refiner, "config", None)  # an UnusableHead stands in without one
        self.refiner_iterations = config.iterations if config is not None else 0
        self.refiner_size = config.render_size if config is not None else 256

    def has(self, part: str) -> bool:
        return {"mapper": self.mapper, "strength": self.strength_head, "refiner": self.refiner}[part] is not None

    def _in(self, x: np.ndarray, dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.as_tensor(np.asarray(x), dtype=dtype, device=self.generator.w_avg.device)

    @staticmethod
    def _out(x: Tensor) -> np.ndarray:
        return x.detach().float().cpu().numpy()

    @torch.no_grad()
    def mapping(self, z: np.ndarray) -> np.ndarray:
        return self._out(self.generator.mapping(self._in(z)))

    @torch.no_grad()
    def synthesize(self, wplus: np.ndarray, size: int) -> np.ndarray:
        return self._out(self.generator(self._in(wplus), size=size))

    @torch.no_grad()
    def embed_photos(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._out(self.image_encoder.embed_images(images))

    @torch.no_grad()
    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        return self._out(self.image_encoder.embed_tensor(self._in(pixels)))

    @torch.no_grad()
    def embed_tokens(self, tokens: np.ndarray) -> np.ndarray:
        return self._out(self.text_encoder.text(self._in(tokens, torch.int64)))

    @torch.no_grad()
    def map(self, embedding: np.ndarray) -> np.ndarray:
        return self._out(self._head(self.mapper, "mapper")(self._in(embedding)))

    @torch.no_grad()
    def strength(self, wplus: np.ndarray, embedding: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return self._out(self._head(self.strength_head, "strength head")(self._in(wplus), self._in(embedding), self._in(delta)))

    @torch.no_grad()
    def refine(self, photo: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
        return self._out(self._head(self.refiner, "refiner")(self._in(photo), self._in(reconstruction)))

    @staticmethod
    def _head(head: torch.nn.Module | None, name: str) -> torch.nn.Module:
        if head is None:  # the pipeline asks ``has`` first; this guards direct callers
            raise WeightsError(f"no trained {name} is loaded")
        return head
