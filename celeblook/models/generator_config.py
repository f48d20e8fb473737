"""The generator's shape: style width, mapping depth, channels per block, and what follows (W+ slots, sizes).

Apart from the network (celeblook.models.mobilestylegan) so that presets and limits read it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GeneratorConfig:
    style_dim: int = 512
    n_mlp: int = 8
    lr_mlp: float = 0.01
    channels: tuple[int, ...] = (512, 512, 512, 512, 512, 256, 128, 64)

    @property
    def n_blocks(self) -> int:
        return len(self.channels) - 1

    @property
    def n_slots(self) -> int:
        return 3 * self.n_blocks + 2

    @property
    def sizes(self) -> tuple[int, ...]:
        """Image sizes the network can render: block i's head is the wavelet transform of 16*2^i px."""
        return tuple(16 * 2**i for i in range(self.n_blocks))

    @property
    def max_size(self) -> int:
        return self.sizes[-1]

    def noise_sizes(self) -> list[int]:
        """Spatial size of each of the 1 + 2*n_blocks noise maps, in the order the layers use them."""
        return [4] + [8 * 2**i for i in range(self.n_blocks) for _ in range(2)]
