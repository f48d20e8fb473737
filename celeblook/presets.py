"""Presets: which models make up a CelebrityLook pipeline.

``ffhq`` is the real product: the published MobileStyleGAN FFHQ generator, OpenCLIP ViT-L/14 and an
EfficientFormer student. ``tiny`` has models of the same kinds, small and filled with seeded random
weights, built in seconds with no files at all: for tests and development. Everything ``tiny``
produces is untrained and is labelled so.

Chosen with ``--preset`` on every command, or the ``CELEBLOOK_PRESET`` environment variable.

``<name>-rehearsal`` (``rehearsal_of``) is a preset's models at their real size with seeded random weights, read
from no file: ``train all --rehearse`` runs every stage on them before anyone pays for the real run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from .errors import InputError
from .limits import C_MAX, TARGET_SIMILARITY
from .models.generator_config import GeneratorConfig

PRESET_ENV = "CELEBLOOK_PRESET"
DEFAULT_PRESET = "ffhq"
REHEARSAL_SUFFIX = "-rehearsal"


# A preset's training defaults, defined here once: the train configs (celeblook.training.*TrainConfig) take the
# ffhq values as their own defaults, and a bare ``train <job> --preset NAME`` runs the preset's.
@dataclass(frozen=True)
class MapperTraining:
    """``train mapper`` defaults (celeblook.training.mapper.MapperTrainConfig explains each)."""

    steps: int = 20_000
    batch: int = 32
    lr: float = 3e-4
    warmup: int = 200
    image_size: int = 256
    mix_prob: float = 0.5
    psi_min: float = 0.5
    consistency_every: int = 4
    centre_samples: int = 4096
    heldout: int = 256
    eval_every: int = 1000


@dataclass(frozen=True)
class StrengthTraining:
    """``train strength`` defaults: the similarity an edit aims at, the range of C, steps and sizes."""

    steps: int = 2000
    batch: int = 8
    lr: float = 1e-3
    target: float = TARGET_SIMILARITY
    c_max: float = C_MAX
    size: int = 256
    eval_pairs: int = 64


@dataclass(frozen=True)
class EncoderTraining:
    """``train encoder`` defaults."""

    steps: int = 20_000
    batch: int = 32
    lr: float = 3e-4
    size: int = 256
    n_eval: int = 64


@dataclass(frozen=True)
class Evaluation:
    """``train all``'s eval stage: how much of ``python -m celeblook eval`` it runs on the heads it trained
    (celeblook.evaluate.EvalConfig explains each)."""

    n: int = 8
    refine_steps: int = 20
    edit_prompts: int = 4
    strength_pairs: int = 32


@dataclass(frozen=True)
class Training:
    """A preset's training defaults: what a bare ``train <job> --preset NAME`` (and ``train all``) runs."""

    mapper: MapperTraining = MapperTraining()
    strength: StrengthTraining = StrengthTraining()
    encoder: EncoderTraining = EncoderTraining()
    evaluation: Evaluation = Evaluation()


# The tiny world (random generator and CLIP) trains in minutes on a CPU at its 64 px exit. Its random CLIP
# cannot tell the per-slot codes of style-mixed faces apart (300 steps: held-out W+ MSE 0.64x the mean-latent
# baseline with mixing, 0.47x without), and its image similarity never falls to 0.7: an edit moves it from 1
# to about 0.93 at most, so the strength head aims at 0.98, which C <= 1 reaches for most held-out pairs
# (the oracle brackets 86-97% of samples of 64; 77-94% at 0.975 with C <= 0.8). Its eval stage is half the
# product's (about 30 s on a 2-core CPU; the full one about a minute).
TINY_TRAINING = Training(
    mapper=MapperTraining(steps=200, lr=3e-3, warmup=20, image_size=64, mix_prob=0.0, consistency_every=0,
                          centre_samples=512, eval_every=100),
    strength=StrengthTraining(steps=60, target=0.98, c_max=1.0, size=64),
    encoder=EncoderTraining(steps=100, batch=16, lr=1e-3, size=64),
    evaluation=Evaluation(n=4, refine_steps=10, edit_prompts=2, strength_pairs=16),
)


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
    training: Training = Training()
    rehearsal: bool = False  # another preset's models at their real size, seeded (``rehearsal_of``)

    @property
    def label(self) -> str:
        if self.rehearsal:
            return f"{self.name} (REHEARSAL: real-size models with seeded random weights)"
        return self.name if self.trained else f"{self.name} (untrained random weights)"

    @property
    def notices(self) -> tuple[str, ...]:
        """The standing note on every result of this preset."""
        return () if self.trained else (f"{self.label}: every model has random weights, so faces are patterns, not people",)


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
        training=TINY_TRAINING,
    ),
}


def rehearsal_of(preset: Preset) -> Preset:
    """``preset``'s models at their real size with seeded random weights (``trained=False``: no file is read),
    named ``<name>-rehearsal`` so that nothing made with it passes for the real preset's."""
    if preset.rehearsal:
        return preset
    return replace(preset, name=preset.name + REHEARSAL_SUFFIX, trained=False, rehearsal=True)


def get_preset(name: str | None = None) -> Preset:
    """The named preset (or ``<name>-rehearsal``), else ``$CELEBLOOK_PRESET``, else ``ffhq``."""
    name = name or os.environ.get(PRESET_ENV) or DEFAULT_PRESET
    base = name.removesuffix(REHEARSAL_SUFFIX)
    if base != name and base in PRESETS:
        return rehearsal_of(PRESETS[base])
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
