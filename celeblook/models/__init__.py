"""The factory: one ``create_*`` per model, built from a preset or an explicit weights file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .mobilestylegan import Generator, GeneratorConfig

if TYPE_CHECKING:
    from ..presets import Preset

__all__ = ["Generator", "GeneratorConfig", "create_generator"]


def create_generator(preset: str | Preset | None = None, checkpoint: str | Path | None = None) -> Generator:
    """A frozen generator: ``checkpoint`` (any of the 3 formats) wins; else the preset's.

    ``tiny``: seeded random weights in the published layout, w_avg from 10k seeded samples.
    ``ffhq``: the converted safetensors in ``weights_dir()``; a WeightsError names the command if absent.
    """
    from ..presets import Preset, get_preset  # presets imports this package: resolve at call time
    from ..weights import require
    from .checkpoint import load_generator
    from .reference_layout import fill_reference

    if checkpoint is not None:
        return load_generator(checkpoint)
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    if not preset.trained:
        generator = Generator(preset.generator)
        return generator.load_reference(fill_reference(preset.generator, preset.seed))
    return load_generator(require(preset.name, "generator"), preset.generator)
