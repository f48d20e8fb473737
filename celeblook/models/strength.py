"""StrengthPredictor: how far to move along a text edit direction, per face and per prompt.

An edit is ``W+ + C * delta`` with ``delta = f(E_T(target)) - f(E_T(source))``. The right C differs from face
to face and from prompt to prompt: too small and nothing changes, too large and the face is lost. The
original write-up trains "a simple projection layer" so that the CLIP image similarity between the face and
its edit lands on a target (0.7); this is that head (trained by ``python -m celeblook train strength``).

    W+ - w_avg --mean of used slots--> unit direction, log RMS --Linear--\\
    delta      --mean of used slots--> unit direction, log RMS --Linear---+--> GELU MLP --> correction
    E_T(target)                                               --Linear--/
    logit C/(c_max - C) = bias + scale_gain * log RMS(delta) + correction;   C = c_max * sigmoid(logit)

Why this shape:
- The similarity after an edit depends on ``C * delta``, so the size of delta (which varies a lot between
  prompts and source prompts) is the strongest single cue. It enters as a direct skip from log RMS(delta) to
  the logit, initialised at -1: for C well below c_max the logit is log C, so the untrained head already
  keeps the edit's size ``C * RMS(delta)`` constant, which is what a fixed C cannot do. The MLP learns the
  rest (which directions and faces CLIP reacts to more), starting from zero so training begins there.
- ``bias`` is the log edit size; training sets it from the bisection oracle on a few training pairs
  (``calibrate``) before the first step, so no step is spent finding the scale of a new latent space.
- Magnitudes enter as log RMS so the head is indifferent to the scale of a latent space.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import WeightsError
from ..limits import C_MAX
from ..remedy import remedy
from .heads_io import load_head

USED_SLOTS = 22  # W+ slot 22 is never read by the generator


@dataclass(frozen=True)
class StrengthConfig:
    style_dim: int = 512
    embed_dim: int = 768
    hidden: int = 256
    c_max: float = C_MAX

    def to_dict(self) -> dict:
        return asdict(self)


def log_rms(x: Tensor) -> Tensor:
    """(N,23,512) -> (N,): log RMS of the used slots."""
    return x[:, :USED_SLOTS].pow(2).mean(dim=(1, 2)).add(1e-12).log().mul(0.5)


class SlotSummary(nn.Module):
    """(N,23,512) -> (N,hidden): the mean of the used slots, as a unit direction and a log RMS magnitude."""

    def __init__(self, style_dim: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(style_dim + 1, hidden)

    def forward(self, x: Tensor) -> Tensor:
        mean = x[:, :USED_SLOTS].mean(dim=1)
        rms = mean.pow(2).mean(dim=1, keepdim=True).add(1e-12).sqrt()
        return self.proj(torch.cat([mean / rms, log_rms(x)[:, None]], dim=1))


class StrengthPredictor(nn.Module):
    """(W+ (N,23,512), target text embedding (N,768), delta (N,23,512)) -> C (N,) in (0, c_max)."""

    def __init__(self, config: StrengthConfig = StrengthConfig(), w_avg: Tensor | None = None):
        super().__init__()
        self.config = config
        h = config.hidden
        self.latent = SlotSummary(config.style_dim, h)
        self.direction = SlotSummary(config.style_dim, h)
        self.text = nn.Linear(config.embed_dim, h)
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 1))
        nn.init.zeros_(self.mlp[-1].weight)  # start as "constant edit size"; the MLP learns corrections
        nn.init.zeros_(self.mlp[-1].bias)
        self.bias = nn.Parameter(torch.zeros(()))  # log of the edit size C * RMS(delta); see calibrate()
        self.scale_gain = nn.Parameter(torch.tensor(-1.0))
        # the generator's mean latent: the latent summary is taken relative to it (saved with the head)
        self.register_buffer("w_avg", torch.zeros(1, config.style_dim) if w_avg is None else w_avg.clone())

    def logit(self, wplus: Tensor, text_embedding: Tensor, delta: Tensor) -> Tensor:
        features = self.latent(wplus - self.w_avg[:, None, :]) + self.direction(delta) + self.text(text_embedding)
        return self.bias + self.scale_gain * log_rms(delta) + self.mlp(features)[:, 0]

    def forward(self, wplus: Tensor, text_embedding: Tensor, delta: Tensor) -> Tensor:
        return torch.sigmoid(self.logit(wplus, text_embedding, delta)) * self.config.c_max

    @torch.no_grad()
    def calibrate(self, strengths: Tensor, deltas: Tensor) -> float:
        """Set ``bias`` so that the head, before training, gives the median edit size of known good
        strengths (e.g. oracle C of training pairs) with ``deltas`` (N,23,512); returns the bias."""
        c = strengths.clamp(1e-4, self.config.c_max * (1 - 1e-4))
        logits = torch.log(c / (self.config.c_max - c)) - self.scale_gain * log_rms(deltas)
        self.bias.copy_(logits.median())
        return float(self.bias)


STRENGTH_KIND = "celeblook strength predictor"


def load_strength(path: Path, preset: str = "ffhq") -> StrengthPredictor:
    """A trained head (``strength.safetensors`` + sidecar); a WeightsError naming the train command when missing."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"strength head weights missing at {path}: run `{remedy('strength', preset)}`")
    return load_head(path, STRENGTH_KIND, StrengthConfig, StrengthPredictor, f"run `{remedy('strength', preset)}`")[0]
