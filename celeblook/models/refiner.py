"""Refiner R: iterative inversion in the ReStyle manner, a learned step instead of optimisation.

Starting from the mapper's answer w_0 = f(E_I(x)), each iteration looks at the photo and the current
reconstruction and predicts a W+ residual:

    w_{t+1} = w_t + R(x, G(w_t))          for t = 0 .. k-1

    x, G(w_t) (N,3,S,S) --resize to input_size, concatenate, clamp to [-1,1]--> (N,6,s,s)
        --timm EfficientFormerV2 features (C,h,w), flattened--> LayerNorm --Linear--\
        --average to 32 x 32, flattened ------------------------------------Linear---+--> Linear (zero at start)
        --> (N,22,512)

What we chose, and why:
- EfficientFormerV2-S0 (timm): the EfficientFormer family made for phones, and unlike V1 its attention is
  sized by ``img_size``, so it runs at a reduced input (128 px for ffhq: the 256 exit halved by an exact 2x2
  average) with 6 input channels. The tiny preset shrinks depths and widths like its student.
- The head reads the final feature map whole, not pooled: where the two faces differ is what the residual
  must undo, and global pooling throws the "where" away (pooled, R barely improved on a trained tiny mapper).
- A linear readout of both images averaged to ``grid`` x ``grid`` (32 x 32) joins the backbone's: the best small
  step is about J^T (x - G(w)) (J: G's Jacobian), nearly linear in the two images, which a linear map learns in
  few steps where the backbone takes many. Its ridge regression on 16,384 tiny faces cut the tiny mapper's
  held-out pixel error to 0.33 x in one iteration at 32 x 32, where 16 x 16 reached 0.52 x (too coarse) and
  2,048 faces 0.64 x (too few for its 6,145 inputs). Both readouts meet in a rank-``hidden`` bottleneck, which
  keeps R small for phones.
- Both images are clamped to [-1, 1] as a photo is: G's pixels can stray far outside (outliers that dominate a
  least-squares fit, and NaN after a very short mapper run) while a photo never does.
- The residual's last layer starts at zero, so an untrained refiner returns the mapper's answer unchanged
  (iteration count 0 and an untrained R agree) and training begins from there.
- Only the 22 used slots get a residual; slot 22 is never read by the generator and stays as it is.
- ``iterations`` (the default k) is stored with the weights: R is trained for that many steps and is best at
  it; the pipeline asks for it unless a request says otherwise (0: the mapper's answer, as before R).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import WeightsError
from ..remedy import remedy
from .heads_io import load_head

REFINER_KIND = "celeblook refiner"


@dataclass(frozen=True)
class RefinerConfig:
    backbone: str = "efficientformerv2_s0"  # timm model name
    backbone_kwargs: dict = field(default_factory=dict)  # timm overrides (the tiny preset's depths and widths)
    input_size: int = 128  # R sees both images at this size (px)
    render_size: int = 256  # the generator exit R reads G(w_t) at
    iterations: int = 2  # k, the default number of refinement steps
    style_dim: int = 512
    n_slots: int = 23
    used_slots: int = 22
    hidden: int = 256  # rank of the residual: both readouts meet in this many units
    grid: int = 32  # the pixel readout sees both images averaged to grid x grid

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RefinerConfig:
        data = dict(data)
        data["backbone_kwargs"] = {k: tuple(v) if isinstance(v, list) else v
                                   for k, v in data.get("backbone_kwargs", {}).items()}
        return cls(**data)


class Refiner(nn.Module):
    """(photo, reconstruction), each (N,3,S,S) in [-1,1] -> W+ residual (N,23,512), slot 22 zero."""

    def __init__(self, config: RefinerConfig = RefinerConfig()):
        super().__init__()
        self.config = config
        self.backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0, in_chans=6,
                                          img_size=config.input_size, **config.backbone_kwargs)
        if config.input_size % config.grid:
            raise WeightsError(f"refiner input_size {config.input_size} is not a multiple of its grid {config.grid}")
        with torch.no_grad():  # the final feature map's size (C x h x w) at this input size
            width = self.backbone.forward_features(torch.zeros(1, 6, config.input_size, config.input_size)).numel()
        self.norm = nn.LayerNorm(width)
        self.features = nn.Linear(width, config.hidden)
        self.pixels = nn.Linear(6 * config.grid**2, config.hidden, bias=False)
        self.out = nn.Linear(config.hidden, config.used_slots * config.style_dim)
        self.reset()  # an untrained R leaves the mapper's answer as it is; see calibrate()

    def forward(self, photo: Tensor, reconstruction: Tensor) -> Tensor:
        pair = self.pair(photo, reconstruction)
        cfg = self.config
        hidden = self.features(self.norm(self.backbone.forward_features(pair).flatten(1))) + self.pixels(self.pooled(pair))
        residual = self.out(hidden).reshape(-1, cfg.used_slots, cfg.style_dim)
        return F.pad(residual, (0, 0, 0, cfg.n_slots - cfg.used_slots))

    def pooled(self, pair: Tensor) -> Tensor:
        """(N,6,s,s) at the input size -> the pixel readout's input (N, 6 grid^2)."""
        return F.avg_pool2d(pair, self.config.input_size // self.config.grid).flatten(1)

    def pair(self, photo: Tensor, reconstruction: Tensor) -> Tensor:
        size = self.config.input_size
        # G's pixels leave [-1, 1] (a poor start sends them to ~1e7): R reads both as a photo holds them, clamped
        pair = torch.cat([photo, reconstruction], dim=1).clamp(-1, 1)
        if pair.shape[-1] != size or pair.shape[-2] != size:
            # bilinear at an integer factor of 1/2 is the exact 2x2 average (and exports to every runtime)
            pair = F.interpolate(pair, size=(size, size), mode="bilinear", align_corners=False)
        return pair

    @torch.no_grad()
    def calibrate(self, pooled: Tensor, residuals: Tensor, ridge: float = 1.0) -> float:
        """Sets the pixel readout and the output layer to the rank-``hidden`` ridge regression of the known W+
        ``residuals`` (N,23,512) on the ``pooled`` image pairs (N, 6 grid^2), the features' readout to zero, so
        training starts from the best linear step instead of from no step; returns the fit's relative error."""
        cfg = self.config
        # the normal equations' matrix in float64, the far larger right-hand side (22 x 512 columns) in float32
        inputs = torch.cat([pooled.float(), torch.ones_like(pooled[:, :1], dtype=torch.float)], dim=1)
        targets = residuals[:, :cfg.used_slots].flatten(1).float()
        gram = inputs.T.double() @ inputs.double()
        gram += ridge * torch.eye(inputs.shape[1], dtype=torch.double, device=inputs.device)
        solution = torch.linalg.solve(gram, (inputs.T @ targets).double())
        # the rank-``hidden`` truncation from the eigenvectors of S S^T (features x features, far smaller than S^T S)
        linear = solution[:-1]
        eigenvalues, vectors = torch.linalg.eigh(linear @ linear.T)
        singular = eigenvalues.flip(0)[:cfg.hidden].clamp_min(0).sqrt()
        rank = int((singular > singular[0] * 1e-7).sum())  # directions the fit does not use stay zero
        singular, left = singular[:rank], vectors.flip(1)[:, :rank]
        self.pixels.weight.zero_()[:rank] = (left * singular).T.float()
        self.out.weight.zero_()[:, :rank] = (linear.T @ left / singular).float()
        self.out.bias.copy_(solution[-1].float())
        self.features.weight.zero_()
        self.features.bias.zero_()
        return float((inputs @ solution.float() - targets).pow(2).sum() / targets.pow(2).sum())

    @torch.no_grad()
    def reset(self) -> None:
        """Back to no step at all (an untrained R: the mapper's answer as it is)."""
        for layer in (self.out, self.features):
            layer.weight.zero_()
            layer.bias.zero_()


def refine_steps(refiner: Refiner, generator, photo: Tensor, wplus: Tensor, iterations: int) -> list[Tensor]:
    """[w_1 .. w_k] from w_0 = ``wplus`` (N,23,512) for ``photo`` (N,3,S,S) in [-1,1] at R's render size."""
    steps = []
    for _ in range(iterations):
        wplus = wplus + refiner(photo, generator(wplus, size=refiner.config.render_size))
        steps.append(wplus)
    return steps


def load_refiner(path: Path, preset: str = "ffhq") -> Refiner:
    """A trained refiner (``refiner.safetensors`` + sidecar); a WeightsError naming the train command when missing."""
    path = Path(path)
    fix = f"run `{remedy('refiner', preset)}`"
    if not path.exists():
        raise WeightsError(f"refiner weights missing at {path}: {fix}")
    return load_head(path, REFINER_KIND, RefinerConfig, lambda config: Refiner(RefinerConfig.from_dict(
        config.to_dict())), fix)[0]
