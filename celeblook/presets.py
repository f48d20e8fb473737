"""Presets: which models make up a CelebrityLook pipeline.

``ffhq`` is the real product: the published MobileStyleGAN FFHQ generator, OpenCLIP ViT-L/14 and an
EfficientFormer student. ``tiny`` has models of the same kinds, small and filled with seeded random
weights, built in seconds with no files at all: for tests and development. Everything ``tiny``
produces is untrained and is labelled so.

Chosen with ``--preset`` on every command, or the ``CELEBLOOK_PRESET`` environment variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import InputError
from .models.mobilestylegan import GeneratorConfig

PRESET_ENV = "CELEBLOOK_PRESET"
DEFAULT_PRESET = "ffhq"


@dataclass(frozen=True)
class Preset:
    name: str
    generator: GeneratorConfig
    clip_model: str  # open_clip model name
    clip_tag: str | None  # open_clip pretrained tag; None = seeded random weights
    student: str  # timm model name of the distilled image encoder
    embed_dim: int = 768  # CLIP embedding size, the mapper's input
    trained: bool = True  # False: seeded random weights, every output is labelled untrained
    seed: int = 0  # seed of the random weights when not trained
    student_kwargs: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name if self.trained else f"{self.name} (untrained random weights)"


PRESETS: dict[str, Preset] = {
    "ffhq": Preset(
        name="ffhq",
        generator=GeneratorConfig(),
        clip_model="ViT-L-14",
        clip_tag="laion2b_s32b_b82k",
        student="efficientformer_l1",
    ),
    "tiny": Preset(
        name="tiny",
        generator=GeneratorConfig(style_dim=512, n_mlp=8, channels=(64, 64, 64, 64, 32, 32, 16, 8)),
        clip_model="celeblook-tiny-clip",
        clip_tag=None,
        student="efficientformer_l1",
        trained=False,
        student_kwargs={"depths": (1, 1, 1, 1), "embed_dims": (16, 24, 32, 48), "num_vit": 1},
    ),
}


def get_preset(name: str | None = None) -> Preset:
    """The named preset, else ``$CELEBLOOK_PRESET``, else ``ffhq``."""
    name = name or os.environ.get(PRESET_ENV) or DEFAULT_PRESET
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
