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
- The input residual is whitened: ``x = (e - e_c) @ e_whiten`` with the shrunk ZCA matrix of the centre
  set (``zca_whitening``). CLIP embeddings of faces sit close together on the unit sphere and spread
  their variance over a few directions; whitening makes every direction O(1), so directions with little
  variance but much to say about W are learned as fast as the big ones. Without a centre set
  ``e_whiten`` is ``I / e_scale`` (``e_scale``: RMS norm of ``e - e_c``).
- A linear readout ``x -> R^512``, shared by the used slots and zero at initialisation, is added to the
  heads' output. Much of W is a linear function of the CLIP residual (including its length, which
  follows the truncation psi and which the trunk's final LayerNorm discards); Adam finds a direct
  linear map in tens of steps, where the MLP first has to undo its random heads. Zero at start, it
  leaves the untrained mapper as it was (the random heads give varied faces).
- ``e_c``, ``e_scale``, ``e_whiten`` and ``w_c`` are buffers, so a saved mapper is self-contained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..remedy import remedy
from .heads_io import load_head, save_weights


@dataclass(frozen=True)
class MapperConfig:
    embed_dim: int = 768
    style_dim: int = 512
    n_slots: int = 23  # W+ slots of MobileStyleGAN
    used_slots: int = 22  # the generator reads slots 0..21; slot 22 is unused
    # 448 x 2 keeps the fp16 browser download of all models under 60 MB (the 22 slot heads are most of it)
    width: int = 448
    depth: int = 2
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
        self.register_buffer("e_whiten", torch.eye(c.embed_dim))
        self.register_buffer("w_center", torch.zeros(c.style_dim))
        self.trunk = nn.Sequential(
            nn.Linear(c.embed_dim, c.width),
            *[ResidualMLP(c.width) for _ in range(c.depth)],
            nn.LayerNorm(c.width),
            nn.LeakyReLU(0.2),
        )
        self.heads = SlotHeads(c.used_slots, c.width, c.style_dim, c.head_gain)
        self.linear = nn.Linear(c.embed_dim, c.style_dim)  # after the heads: their seeded weights do not depend on it
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    @torch.no_grad()
    def set_centres(
        self, e_center: Tensor, e_scale: float | Tensor, w_center: Tensor, e_whiten: Tensor | None = None
    ) -> Mapper:
        """Centres e_c, w_c, the RMS norm ``e_scale`` of e - e_c and the input whitening (default ``I / e_scale``)."""
        self.e_center.copy_(e_center.reshape(-1))
        self.e_scale.copy_(torch.as_tensor(e_scale, dtype=torch.float32))
        self.w_center.copy_(w_center.reshape(-1))
        eye = torch.eye(self.config.embed_dim, device=self.e_whiten.device)
        self.e_whiten.copy_(e_whiten if e_whiten is not None else eye / self.e_scale)
        return self

    def residual(self, embedding: Tensor) -> Tensor:
        """(N, 768) -> (N, 22, 512): f(e - e_c) for the used slots."""
        x = (embedding.float() - self.e_center) @ self.e_whiten
        return self.heads(self.trunk(x)) + self.linear(x)[:, None, :]

    def forward(self, embedding: Tensor) -> Tensor:
        """(N, 768) -> W+ (N, 23, 512) = w_c + f(e - e_c); the unused slot 22 holds w_c."""
        res = self.residual(embedding)
        pad = res.new_zeros(res.shape[0], self.config.n_slots - self.config.used_slots, self.config.style_dim)
        return self.w_center + torch.cat([res, pad], dim=1)


def zca_whitening(residuals: Tensor, shrinkage: float = 0.1) -> Tensor:
    """(d, d) symmetric ``(C + delta I)^(-1/2)`` for residuals (n, d) with covariance C.

    ``delta = shrinkage * trace(C) / min(n - 1, d)``, a fraction of the mean non-zero eigenvalue: directions
    with much more variance than delta come out with unit variance, those the sample barely spans (noise,
    or fewer samples than dimensions) are damped instead of blown up.
    """
    n, d = residuals.shape
    r = residuals.double() - residuals.double().mean(dim=0)
    cov = r.T @ r / max(1, n - 1)
    eigenvalues, vectors = torch.linalg.eigh(cov)
    delta = shrinkage * cov.trace() / max(1, min(n - 1, d))
    scale = (eigenvalues.clamp_min(0) + delta).rsqrt()
    return ((vectors * scale) @ vectors.T).float()


def save_mapper(path: Path, mapper: Mapper, provenance: dict[str, Any]) -> str:
    """``path`` = ``.../mapper.safetensors``; the sidecar holds the config and where the centres came from."""
    sidecar = {"kind": "celeblook mapper", "config": mapper.config.to_dict(), "provenance": provenance}
    return save_weights(Path(path), mapper.state_dict(), sidecar)


def load_mapper(path: Path, preset: str = "ffhq") -> tuple[Mapper, dict[str, Any]]:
    """A frozen mapper in eval mode, plus its sidecar (config, provenance, sha256)."""
    return load_head(path, "celeblook mapper", MapperConfig, Mapper, f"run `{remedy('mapper', preset)}`")
