"""Mapper f: CLIP embedding (768) -> W+ (23x512), the latent alignment of arXiv 2210.04506 (CSLA).

What the paper describes and we follow: map *residuals* around manipulation centres instead of raw
latents, because CLIP and StyleGAN disagree about the "average face". The centre in W is the mean latent
``w_c = G.w_avg``; the centre in CLIP space ``e_c`` is the mean image embedding of generated faces (the
paper discusses centre choices; we use this fixed mean, computed once from a seeded set of generator
samples and stored with the weights). So

    W+ = w_c + f(e - e_c)

What we chose where the public material is silent, and why:
- A shared trunk (Linear -> ``depth`` pre-LayerNorm residual MLP blocks with leaky ReLU) followed by one
  linear head per used W+ slot (the paper's per-layer heads), all heads evaluated as one batched einsum.
- The output is LINEAR. An earlier version ended in a GELU, which clips negative residuals: half the
  directions in W could not be reached.
- Only the 22 slots the generator reads are predicted; slot 22 is dead (changing it changes no pixel),
  so it gets no head, no parameters and no gradient, and is filled with ``w_c`` (residual 0).
- The input residual is divided by ``e_scale``, the RMS norm of ``e - e_c`` over the centre set: CLIP
  embeddings of faces sit close together on the unit sphere, and this makes the trunk's input O(1).
- ``e_c``, ``e_scale`` and ``w_c`` are buffers, so a saved mapper is self-contained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .heads_io import load_head, save_weights

TRAIN_COMMAND = "python -m celeblook train mapper --preset {preset} --out weights/{preset}"


@dataclass(frozen=True)
class MapperConfig:
    embed_dim: int = 768
    style_dim: int = 512
    n_slots: int = 23  # W+ slots of MobileStyleGAN
    used_slots: int = 22  # the generator reads slots 0..21; slot 22 is unused
    width: int = 512
    depth: int = 4
    head_gain: float = 1.0  # nn.Linear-like scale: an untrained mapper gives varied faces, not one

    def to_dict(self) -> dict:
        return asdict(self)


class ResidualMLP(nn.Module):
    """x + Linear(leaky_relu(Linear(LayerNorm(x))))."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class SlotHeads(nn.Module):
    """One linear map per W+ slot, (N, width) -> (N, slots, style_dim), as a single einsum."""

    def __init__(self, slots: int, width: int, style_dim: int, gain: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(slots, width, style_dim) * (gain / math.sqrt(width)))
        self.bias = nn.Parameter(torch.zeros(slots, style_dim))

    def forward(self, h: Tensor) -> Tensor:
        return torch.einsum("nh,shd->nsd", h, self.weight) + self.bias


class Mapper(nn.Module):
    def __init__(self, config: MapperConfig = MapperConfig()):
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("e_center", torch.zeros(c.embed_dim))
        self.register_buffer("e_scale", torch.ones(()))
        self.register_buffer("w_center", torch.zeros(c.style_dim))
        self.trunk = nn.Sequential(
            nn.Linear(c.embed_dim, c.width),
            *[ResidualMLP(c.width) for _ in range(c.depth)],
            nn.LayerNorm(c.width),
            nn.LeakyReLU(0.2),
        )
        self.heads = SlotHeads(c.used_slots, c.width, c.style_dim, c.head_gain)

    @torch.no_grad()
    def set_centres(self, e_center: Tensor, e_scale: float | Tensor, w_center: Tensor) -> Mapper:
        self.e_center.copy_(e_center.reshape(-1))
        self.e_scale.copy_(torch.as_tensor(e_scale, dtype=torch.float32))
        self.w_center.copy_(w_center.reshape(-1))
        return self

    def residual(self, embedding: Tensor) -> Tensor:
        """(N, 768) -> (N, 22, 512): f(e - e_c) for the used slots."""
        x = (embedding.float() - self.e_center) / self.e_scale
        return self.heads(self.trunk(x))

    def forward(self, embedding: Tensor) -> Tensor:
        """(N, 768) -> W+ (N, 23, 512) = w_c + f(e - e_c); the unused slot 22 holds w_c."""
        res = self.residual(embedding)
        pad = res.new_zeros(res.shape[0], self.config.n_slots - self.config.used_slots, self.config.style_dim)
        return self.w_center + torch.cat([res, pad], dim=1)


def save_mapper(path: Path, mapper: Mapper, provenance: dict[str, Any]) -> str:
    """``path`` = ``.../mapper.safetensors``; the sidecar holds the config and where the centres came from."""
    sidecar = {"kind": "celeblook mapper", "config": mapper.config.to_dict(), "provenance": provenance}
    return save_weights(Path(path), mapper.state_dict(), sidecar)


def load_mapper(path: Path) -> tuple[Mapper, dict[str, Any]]:
    """A frozen mapper in eval mode, plus its sidecar (config, provenance, sha256)."""
    return load_head(path, "celeblook mapper", MapperConfig, Mapper, f"run `{TRAIN_COMMAND.format(preset='ffhq')}`")
