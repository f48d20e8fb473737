"""The synthesis network as exported to ONNX: the same function as ``MobileSynthesis``, fewer memory passes.

``MobileSynthesis`` reads like the paper. On a CPU most of its time at 1024 px goes to moving memory, not to
arithmetic (the last block works on 64 maps of 512x512), so the exported graph computes the same function
with fewer full-size passes (mobilestylegan.md §5: demodulation folded, zero noise, inverse Haar as a pixel
shuffle, no ConvTranspose):

- A block's upsample (style scale -> inverse Haar mix -> pixel shuffle) and its conv1's style scale are, per
  sample and per output channel, one 4x4 matrix on that channel's (LL, B0, B1, B2) coefficients: one batched
  MatMul instead of a Mul, a Split, twelve Add/Sub, a Concat and another Mul. The coefficients are made
  adjacent by permuting the output channels of the convolution that produces them (constant weights: free).
- The pixel shuffle is two transposes (interleave columns, then rows), which ONNX Runtime's CPU kernels run
  2-3x faster than its DepthToSpace, still a pure data movement.
- The exit's wavelet head absorbs the inverse Haar mix: one 1x1 conv, then the shuffle.
- Only the blocks the exit size needs are in the graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.mobilestylegan import MobileSynthesis, haar_idwt


def haar_mix_matrix(channels: int = 3) -> Tensor:
    """The inverse Haar transform before its pixel shuffle, as a (4C, 4C) matrix.

    ``haar_idwt`` is linear and per-pixel up to the shuffle, so applying it to each basis vector and
    un-shuffling gives its matrix (rows: sub-pixel planes c*4 + 2a + b; columns: the wavelet layout).
    """
    eye = torch.eye(4 * channels)[:, :, None, None]  # 4C one-pixel images, one per basis vector
    return F.pixel_unshuffle(haar_idwt(eye), 2)[:, :, 0, 0].T.contiguous()


def coefficients_by_channel(channels: int) -> Tensor:
    """Permutation that puts each output channel's (LL, B0, B1, B2) next to each other.

    The wavelet layout keeps LL in [0:C] and band k of channel c at C + 3c + k (pytorch_wavelets).
    """
    c = torch.arange(channels)
    return torch.stack([c, channels + 3 * c, channels + 3 * c + 1, channels + 3 * c + 2], dim=1).reshape(-1)


def pixel_shuffle(x: Tensor) -> Tensor:
    """(N, 4C, H, W) -> (N, C, 2H, 2W), the same as ``F.pixel_shuffle(x, 2)``, as two transposes."""
    n, c4, h, w = x.shape
    c = c4 // 4
    x = x.reshape(n * c * 2, 2, h * w).transpose(1, 2)  # sub-pixel column b becomes the innermost axis
    x = x.reshape(n * c, 2, h, 2 * w).transpose(1, 2)  # sub-pixel row a goes between the rows
    return x.reshape(n, c, 2 * h, 2 * w)


class ExportedBlock(nn.Module):
    """A synthesis block whose output channels come in the order the next block's upsample reads them."""

    def __init__(self, block: nn.Module, next_order: Tensor | None):
        super().__init__()
        order = coefficients_by_channel(block.up.modulation.out_features // 4)
        self.register_buffer("up_weight", block.up.modulation.weight[order].clone())  # the upsample's style
        self.register_buffer("up_bias", block.up.modulation.bias[order].clone())  # in coefficient order
        self.conv1, self.conv2 = block.conv1, block.conv2
        keep = torch.arange(block.conv2.weight_pw.shape[0]) if next_order is None else next_order
        self.register_buffer("weight_pw2", block.conv2.weight_pw[keep].clone())
        self.register_buffer("bias2", block.conv2.bias[:, keep].clone())
        self.register_buffer("haar", haar_mix_matrix(1).to(self.up_weight))  # (4 sub-pixel planes, 4 coefficients)

    def forward(self, x: Tensor, w_up: Tensor, w_conv2: Tensor) -> Tensor:
        x = self.upsample(x, w_up)
        x = F.conv2d(x, self.conv1.weight_dw, padding=1, groups=x.shape[1])
        x = F.leaky_relu(F.conv2d(x, self.conv1.weight_pw) + self.conv1.bias, 0.2)
        x = x * self.conv2.modulation(w_conv2)[:, :, None, None]
        x = F.conv2d(x, self.conv2.weight_dw, padding=1, groups=x.shape[1])
        return F.leaky_relu(F.conv2d(x, self.weight_pw2) + self.bias2, 0.2)

    def upsample(self, x: Tensor, w: Tensor) -> Tensor:
        """Style scale, inverse Haar and conv1's style scale as one (N, C, 4, 4) MatMul, then the shuffle."""
        n, c4, h, width = x.shape
        c = c4 // 4
        scale_in = F.linear(w, self.up_weight, self.up_bias).reshape(n, c, 1, 4)  # per coefficient
        scale_out = self.conv1.modulation(w).reshape(n, c, 1, 1)  # per output channel: all four sub-pixels
        planes = torch.matmul(scale_out * self.haar * scale_in, x.reshape(n, c, 4, h * width))
        return pixel_shuffle(planes.reshape(n, c4, h, width))


class ExportedSynthesis(nn.Module):
    """W+ (N,23,512) -> image (N,3,size,size) at one exit size, zero noise: what ``synthesis_<size>.onnx`` computes."""

    def __init__(self, synthesis: MobileSynthesis, size: int):
        super().__init__()
        self.size = size
        n_blocks = synthesis.blocks_for(size)
        blocks = synthesis.blocks[:n_blocks]
        orders = [coefficients_by_channel(b.up.modulation.out_features // 4) for b in blocks] + [None]
        self.const = synthesis.const
        self.conv1_modulation = synthesis.conv1.modulation
        self.register_buffer("conv1_weight", synthesis.conv1.weight[orders[0]].clone())
        self.register_buffer("conv1_bias", synthesis.conv1.bias[:, orders[0]].clone())
        self.blocks = nn.ModuleList(ExportedBlock(b, order) for b, order in zip(blocks, orders[1:]))
        head = blocks[-1].head
        mix = haar_mix_matrix().to(head.weight)
        self.head_modulation = head.modulation
        self.register_buffer("head_weight", (mix @ head.weight[:, :, 0, 0])[:, :, None, None])
        self.register_buffer("head_bias", (mix @ head.bias.reshape(12)).reshape(1, 12, 1, 1))

    def forward(self, wplus: Tensor) -> Tensor:
        x = self.const.expand(wplus.shape[0], -1, -1, -1) * self.conv1_modulation(wplus[:, 0])[:, :, None, None]
        x = F.leaky_relu(F.conv2d(x, self.conv1_weight, padding=1) + self.conv1_bias, 0.2)
        for i, block in enumerate(self.blocks):
            x = block(x, wplus[:, 3 * i + 1], wplus[:, 3 * i + 2])
        w_head = wplus[:, 3 * len(self.blocks)]
        planes = F.conv2d(x * self.head_modulation(w_head)[:, :, None, None], self.head_weight) + self.head_bias
        return pixel_shuffle(planes)
