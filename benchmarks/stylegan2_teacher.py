"""A StyleGAN2 config-f generator (Karras et al. 2020) with random weights: the teacher's cost, for benchmarks.

Only the forward cost has to be faithful, not the pictures: mapping 8x512, modulated 3x3 convs with
demodulation, 2x upsampling convs followed by a 4x4 blur, and 1x1 toRGB layers whose outputs are upsampled
(blurred) and summed. Channels 512 up to 64 px, then 256, 128, 64, 32 (channel multiplier 2), 1024 px out.
Modulation scales the input and demodulation the output, so weights are shared by the batch and the graph
exports to ONNX with a dynamic batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from celeblook.models.mobilestylegan import MappingNetwork

CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
BLUR = torch.tensor([1.0, 3.0, 3.0, 1.0])


def blur_kernel(channels: int, gain: float = 1.0) -> Tensor:
    """The [1,3,3,1] separable FIR filter, normalised, as a depthwise (C,1,4,4) kernel."""
    k = torch.outer(BLUR, BLUR)
    return (k / k.sum() * gain).expand(channels, 1, 4, 4).contiguous()


class ModulatedConv(nn.Module):
    """y = demod * conv(x * s); upsample=True uses a stride-2 transposed conv then the blur."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, style_dim: int = 512, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel) / math.sqrt(in_ch * kernel**2))
        self.modulation = nn.Linear(style_dim, in_ch)
        nn.init.normal_(self.modulation.weight, std=1 / math.sqrt(style_dim))
        nn.init.ones_(self.modulation.bias)
        self.demodulate, self.upsample, self.padding = demodulate, upsample, kernel // 2
        if upsample:
            self.register_buffer("blur", blur_kernel(out_ch, gain=4.0))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        s = self.modulation(w)
        x = x * s[:, :, None, None]
        if self.upsample:
            x = F.conv_transpose2d(x, self.weight.transpose(0, 1), stride=2, padding=0)
            x = F.conv2d(F.pad(x, (1, 1, 1, 1)), self.blur, groups=x.shape[1])
        else:
            x = F.conv2d(x, self.weight, padding=self.padding)
        if self.demodulate:
            energy = s.pow(2) @ self.weight.pow(2).sum(dim=(2, 3)).T  # (N, Cout)
            x = x * torch.rsqrt(energy + 1e-8)[:, :, None, None]
        return x


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, 3, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x: Tensor, w: Tensor, noise: Tensor) -> Tensor:
        x = self.conv(x, w) + self.noise_strength * noise
        return F.leaky_relu(x + self.bias, 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, upsample_skip: bool):
        super().__init__()
        self.conv = ModulatedConv(in_ch, 3, 1, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample_skip:
            self.register_buffer("blur", blur_kernel(3, gain=4.0))

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None) -> Tensor:
        rgb = self.conv(x, w) + self.bias
        if skip is not None:  # zero-insertion upsampling + blur of the previous image
            up = F.conv_transpose2d(skip, torch.ones(3, 1, 1, 1, device=skip.device), stride=2, groups=3)
            rgb = rgb + F.conv2d(F.pad(up, (2, 2, 2, 2)), self.blur, groups=3)
        return rgb


class StyleGAN2Generator(nn.Module):
    """z (N,512) -> image (N,3,1024,1024); truncation towards a stored w_avg, fixed noise buffers."""

    def __init__(self, size: int = 1024, style_dim: int = 512, seed: int = 0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.mapping = MappingNetwork(style_dim, 8, 0.01)
            for layer in self.mapping.layers[1:]:
                nn.init.normal_(layer.weight, std=1 / 0.01)
            self.const = nn.Parameter(torch.randn(1, CHANNELS[4], 4, 4))
            self.conv1 = StyledConv(CHANNELS[4], CHANNELS[4])
            self.to_rgb1 = ToRGB(CHANNELS[4], upsample_skip=False)
            self.ups, self.convs, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
            res = 8
            while res <= size:
                self.ups.append(StyledConv(CHANNELS[res // 2], CHANNELS[res], upsample=True))
                self.convs.append(StyledConv(CHANNELS[res], CHANNELS[res]))
                self.to_rgbs.append(ToRGB(CHANNELS[res], upsample_skip=True))
                res *= 2
            self.n_latent = 2 * len(self.ups) + 2
            self.register_buffer("w_avg", torch.zeros(1, style_dim))
            for i, r in enumerate([4] + [8 * 2**k for k in range(len(self.ups)) for _ in range(2)]):
                self.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        self.eval().requires_grad_(False)

    def forward(self, z: Tensor, psi: float = 0.7) -> Tensor:
        w = self.w_avg + psi * (self.mapping(z) - self.w_avg)
        x = self.const.expand(z.shape[0], -1, -1, -1)
        x = self.conv1(x, w, self.noise_0)
        rgb = self.to_rgb1(x, w, None)
        for i, (up, conv, to_rgb) in enumerate(zip(self.ups, self.convs, self.to_rgbs)):
            x = up(x, w, getattr(self, f"noise_{2 * i + 1}"))
            x = conv(x, w, getattr(self, f"noise_{2 * i + 2}"))
            rgb = to_rgb(x, w, rgb)
        return rgb
