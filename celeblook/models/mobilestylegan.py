"""MobileStyleGAN (Belousov 2021, arXiv 2104.04767), written to load the published checkpoint unchanged.

    z (N,512) --mapping--> w (N,512) --[truncation]--> W+ (N,23,512)
    W+ --synthesis--> 12-channel Haar wavelet heads --inverse Haar--> RGB (N,3,H,W), nominally [-1,1]

The mapping network is StyleGAN2's (config-f). The synthesis network works on wavelet coefficients with
depthwise-separable modulated convolutions whose demodulation does not depend on the style, so it is
folded into the pointwise weights once, at load (``load_reference``). The inverse Haar transform is a
fixed 1x1 mix followed by a pixel shuffle. Every block has a head, so any block can be an early exit:
rendering at 256 px runs only blocks 0-4.

W+ slots (23, of which 22 are used):
    0: conv1 (4x4)        1: head1 and block 0's upsample + conv1
    3i+1: block i upsample + conv1    3i+2: block i conv2    3i+3: block i head      22: unused
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..seeds import seeded_normal
from .generator_config import GeneratorConfig

DEMOD_EPS = 1e-8  # part of the reference math; kept when demodulation is folded


def haar_idwt(x: Tensor) -> Tensor:
    """Single-level inverse Haar DWT: (N,4C,H,W) wavelet coefficients -> (N,C,2H,2W).

    Layout (pytorch_wavelets): LL in channels [0:C], band k of channel c at C + 3c + k. Each output
    pixel (2i+a, 2j+b) is (LL +- B0 +- B1 +- B2) / 2 with signs (-1)^a, (-1)^b, (-1)^(a+b); the four
    sub-pixel planes are stacked as c*4 + 2a + b and placed by a pixel shuffle (ONNX DepthToSpace).
    """
    n, c4, h, w = x.shape
    c = c4 // 4
    ll = x[:, :c]
    b0, b1, b2 = x[:, c:].reshape(n, c, 3, h, w).unbind(2)
    planes = torch.stack(
        [ll + b0 + b1 + b2, ll + b0 - b1 - b2, ll - b0 + b1 - b2, ll - b0 - b1 + b2], dim=2
    )
    return F.pixel_shuffle(0.5 * planes.reshape(n, 4 * c, h, w), 2)


# ---------------------------------------------------------------------------------------------------
# mapping network


class PixelNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """StyleGAN2's equalized-lr linear + fused leaky ReLU. Stored weights are pre-divided by lr_mul."""

    def __init__(self, dim: int, lr_mul: float):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(dim, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.scale = lr_mul / math.sqrt(dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * math.sqrt(2)


class MappingNetwork(nn.Module):
    def __init__(self, style_dim: int, n_mlp: int, lr_mul: float):
        super().__init__()
        # index 0 is the parameter-free PixelNorm, so the checkpoint's keys layers.1..8 line up
        self.layers = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, lr_mul) for _ in range(n_mlp)])

    def forward(self, z: Tensor) -> Tensor:
        return self.layers(z)


# ---------------------------------------------------------------------------------------------------
# synthesis network


def _ref(sd: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in sd:
        raise KeyError(f"checkpoint is missing generator key {key!r}")
    return sd[key].detach().to(torch.float32)


class StyledConv(nn.Module):
    """Modulated 3x3 conv + noise + bias + leaky ReLU (no sqrt(2) gain, unlike StyleGAN2).

    Modulation scales the input activations per sample (the weights are shared by the batch);
    demodulation is a constant per output channel, already folded into ``weight``/``weight_pw``.
    ``depthwise`` selects the block convs (3x3 depthwise then 1x1 pointwise) over the full 3x3 conv.
    """

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, depthwise: bool):
        super().__init__()
        self.depthwise = depthwise
        self.modulation = nn.Linear(style_dim, in_ch)
        if depthwise:
            self.weight_dw = nn.Parameter(torch.zeros(in_ch, 1, 3, 3))
            self.weight_pw = nn.Parameter(torch.zeros(out_ch, in_ch, 1, 1))
        else:
            self.weight = nn.Parameter(torch.zeros(out_ch, in_ch, 3, 3))
        self.noise_weight = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor | None = None) -> Tensor:
        x = x * self.modulation(w)[:, :, None, None]
        if self.depthwise:
            x = F.conv2d(F.conv2d(x, self.weight_dw, padding=1, groups=x.shape[1]), self.weight_pw)
        else:
            x = F.conv2d(x, self.weight, padding=1)
        if noise is not None:
            x = x + self.noise_weight * noise
        return F.leaky_relu(x + self.bias, 0.2)

    @torch.no_grad()
    def load_reference(self, sd: Mapping[str, Tensor], prefix: str) -> None:
        """Fold scale = 1/sqrt(Cin*9) and d_o = rsqrt(sum (scale*style_inv_i*K_oiuv)^2 + eps) into the weights."""
        self.modulation.weight.copy_(_ref(sd, prefix + "conv.modulation.weight"))
        self.modulation.bias.copy_(_ref(sd, prefix + "conv.modulation.bias"))
        style_inv = _ref(sd, prefix + "conv.style_inv").reshape(-1)  # (Cin,)
        scale = 1.0 / math.sqrt(style_inv.numel() * 9)
        if self.depthwise:
            w_dw = _ref(sd, prefix + "conv.weight_dw")  # (Cin,1,3,3)
            w_pw = _ref(sd, prefix + "conv.weight_permute")[:, :, 0, 0]  # (Cout,Cin)
            # K_oiuv = w_dw_iuv * w_pw_oi, so sum_iuv K^2 factorises over u,v
            energy = (scale * style_inv * w_pw).pow(2) @ w_dw.pow(2).sum(dim=(1, 2, 3))
            demod = torch.rsqrt(energy + DEMOD_EPS)
            self.weight_dw.copy_(w_dw)
            self.weight_pw.copy_((w_pw * (scale * demod)[:, None])[:, :, None, None])
        else:
            weight = _ref(sd, prefix + "conv.weight")  # (Cout,Cin,3,3)
            energy = (scale * style_inv[None, :, None, None] * weight).pow(2).sum(dim=(1, 2, 3))
            demod = torch.rsqrt(energy + DEMOD_EPS)
            self.weight.copy_(weight * (scale * demod)[:, None, None, None])
        self.noise_weight.copy_(_ref(sd, prefix + "noise.weight"))
        self.bias.copy_(_ref(sd, prefix + "bias"))


class WaveletHead(nn.Module):
    """Modulated 1x1 conv to 12 Haar channels (no demodulation); 1/sqrt(Cin) is folded into ``weight``."""

    def __init__(self, in_ch: int, style_dim: int):
        super().__init__()
        self.modulation = nn.Linear(style_dim, in_ch)
        self.weight = nn.Parameter(torch.zeros(12, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, 12, 1, 1))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return F.conv2d(x * self.modulation(w)[:, :, None, None], self.weight) + self.bias

    @torch.no_grad()
    def load_reference(self, sd: Mapping[str, Tensor], prefix: str) -> None:
        self.modulation.weight.copy_(_ref(sd, prefix + "conv.modulation.weight"))
        self.modulation.bias.copy_(_ref(sd, prefix + "conv.modulation.bias"))
        weight = _ref(sd, prefix + "conv.weight")
        self.weight.copy_(weight / math.sqrt(weight.shape[1]))
        self.bias.copy_(_ref(sd, prefix + "bias"))


class WaveletUpsample(nn.Module):
    """Scale channels by a style (plain affine, no demodulation), then inverse Haar: C@r -> C/4@2r."""

    def __init__(self, in_ch: int, style_dim: int):
        super().__init__()
        self.modulation = nn.Linear(style_dim, in_ch)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return haar_idwt(x * self.modulation(w)[:, :, None, None])

    @torch.no_grad()
    def load_reference(self, sd: Mapping[str, Tensor], prefix: str) -> None:
        self.modulation.weight.copy_(_ref(sd, prefix + "modulation.weight"))
        self.modulation.bias.copy_(_ref(sd, prefix + "modulation.bias"))


class SynthesisBlock(nn.Module):
    """Doubles the resolution: upsample (slot 3i+1), conv1 (3i+1), conv2 (3i+2); head uses 3i+3."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int):
        super().__init__()
        self.up = WaveletUpsample(in_ch, style_dim)
        self.conv1 = StyledConv(in_ch // 4, out_ch, style_dim, depthwise=True)
        self.conv2 = StyledConv(out_ch, out_ch, style_dim, depthwise=True)
        self.head = WaveletHead(out_ch, style_dim)

    def forward(self, x: Tensor, w_up: Tensor, w_conv2: Tensor, noise1: Tensor | None, noise2: Tensor | None) -> Tensor:
        x = self.up(x, w_up)
        x = self.conv1(x, w_up, noise1)
        return self.conv2(x, w_conv2, noise2)

    def load_reference(self, sd: Mapping[str, Tensor], prefix: str) -> None:
        self.up.load_reference(sd, prefix + "up.")
        self.conv1.load_reference(sd, prefix + "conv1.")
        self.conv2.load_reference(sd, prefix + "conv2.")
        self.head.load_reference(sd, prefix + "to_img.")


NoiseMaps = Sequence[Tensor | None]


class MobileSynthesis(nn.Module):
    """W+ (N,23,512) or w (N,512) -> image (N,3,size,size). ``size`` picks the early exit."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        ch, s = config.channels, config.style_dim
        self.const = nn.Parameter(torch.zeros(1, ch[0], 4, 4))
        self.conv1 = StyledConv(ch[0], ch[0], s, depthwise=False)
        self.head1 = WaveletHead(ch[0], s)
        self.blocks = nn.ModuleList(SynthesisBlock(ch[i], ch[i + 1], s) for i in range(config.n_blocks))

    def forward(self, wplus: Tensor, size: int | None = None, noise: NoiseMaps | None = None) -> Tensor:
        n_blocks = self.blocks_for(size)
        *_, (x, head, w) = self._hidden_states(wplus, n_blocks, noise)  # the last stage's features and head
        return haar_idwt(head(x, w))

    def heads(self, wplus: Tensor, noise: NoiseMaps | None = None) -> list[Tensor]:
        """The raw 12-channel wavelet head of every stage (4x4, then each block): for tests and previews."""
        return [head(x, w) for x, head, w in self._hidden_states(wplus, self.config.n_blocks, noise)]

    def blocks_for(self, size: int | None) -> int:
        sizes = self.config.sizes
        if size is None:
            return len(sizes)
        if size not in sizes:
            raise ValueError(f"size must be one of {', '.join(map(str, sizes))}, got {size}")
        return sizes.index(size) + 1

    def _hidden_states(
        self, wplus: Tensor, n_blocks: int, noise: NoiseMaps | None
    ) -> Iterator[tuple[Tensor, WaveletHead, Tensor]]:
        """Yields (hidden state, its head, the head's style) for the 4x4 stage and blocks 0..n_blocks-1."""
        if wplus.dim() == 2:
            wplus = wplus[:, None, :].expand(-1, self.config.n_slots, -1)
        maps = list(noise) if noise is not None else [None] * len(self.config.noise_sizes())
        x = self.const.expand(wplus.shape[0], -1, -1, -1)
        x = self.conv1(x, wplus[:, 0], maps[0])
        yield x, self.head1, wplus[:, 1]
        for i, block in enumerate(self.blocks[:n_blocks]):
            x = block(x, wplus[:, 3 * i + 1], wplus[:, 3 * i + 2], maps[1 + 2 * i], maps[2 + 2 * i])
            yield x, block.head, wplus[:, 3 * i + 3]

    @torch.no_grad()
    def load_reference(self, sd: Mapping[str, Tensor], prefix: str = "student.") -> None:
        self.const.copy_(_ref(sd, prefix + "input.input"))
        self.conv1.load_reference(sd, prefix + "conv1.")
        self.head1.load_reference(sd, prefix + "to_img1.")
        for i, block in enumerate(self.blocks):
            block.load_reference(sd, f"{prefix}layers.{i}.")


# ---------------------------------------------------------------------------------------------------
# the generator


class Generator(nn.Module):
    """Mapping + synthesis + the mean latent ``w_avg`` used for truncation (and as the mapper's centre)."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config.style_dim, config.n_mlp, config.lr_mlp)
        self.synthesis = MobileSynthesis(config)
        self.register_buffer("w_avg", torch.zeros(1, config.style_dim))

    def forward(self, wplus: Tensor, size: int | None = None, noise: NoiseMaps | None = None) -> Tensor:
        return self.synthesis(wplus, size, noise)

    def truncate(self, w: Tensor, psi: float) -> Tensor:
        """w_avg + psi * (w - w_avg), for w (N,512) or W+ (N,23,512)."""
        avg = self.w_avg if w.dim() == 2 else self.w_avg[:, None, :]
        return avg + psi * (w - avg)

    def seeded_z(self, seed: int) -> Tensor:
        """The z (1,512) of a seed: celeblook.seeds' stream, which the app, the CLI and the browser page share."""
        return torch.from_numpy(seeded_normal(seed, self.config.style_dim))[None].to(self.w_avg.device)

    def z_to_wplus(self, z: Tensor, psi: float = 1.0) -> Tensor:
        w = self.truncate(self.mapping(z), psi)
        return w[:, None, :].expand(-1, self.config.n_slots, -1).contiguous()

    @torch.no_grad()
    def compute_w_avg(self, n_samples: int = 10_000, seed: int = 0, batch: int = 2_500) -> Tensor:
        """Mean of mapping(z) over seeded z ~ N(0, I); the checkpoint's ``style_mean`` is not a real mean."""
        gen = torch.Generator().manual_seed(seed)
        total = torch.zeros(1, self.config.style_dim, dtype=torch.float64)
        for start in range(0, n_samples, batch):
            z = torch.randn(min(batch, n_samples - start), self.config.style_dim, generator=gen)
            total += self.mapping(z.to(self.w_avg.device)).double().sum(dim=0, keepdim=True).cpu()
        return (total / n_samples).float()

    def make_noise(self, seed: int) -> list[Tensor]:
        """Fixed per-layer noise maps from a seed (the reference drew fresh noise on every call)."""
        gen = torch.Generator().manual_seed(seed)
        return [torch.randn(1, 1, s, s, generator=gen).to(self.w_avg.device) for s in self.config.noise_sizes()]

    @torch.no_grad()
    def load_reference(self, sd: Mapping[str, Tensor], w_avg: Tensor | None = None) -> Generator:
        """Load a reference (checkpoint-keyed) state dict: ``mapping_net.*`` and ``student.*``."""
        mapping_sd = {k[len("mapping_net.") :]: v for k, v in sd.items() if k.startswith("mapping_net.")}
        missing, unexpected = self.mapping.load_state_dict(mapping_sd, strict=False)
        if missing or unexpected:
            raise KeyError(f"mapping network keys do not match: missing {missing[:3]}, unexpected {unexpected[:3]}")
        self.synthesis.load_reference(sd)
        self.w_avg.copy_(w_avg if w_avg is not None else self.compute_w_avg())
        return self.eval().requires_grad_(False)
