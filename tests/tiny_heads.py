"""Seeded tiny heads saved as `train all` leaves them (for publishing, exporting and serving them in tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from celeblook.factory import create_generator
from celeblook.models.heads_io import save_weights
from celeblook.models.mapper import Mapper, MapperConfig, save_mapper
from celeblook.models.strength import STRENGTH_KIND, StrengthPredictor
from celeblook.models.student import create_student, save_student
from celeblook.presets import get_preset

TINY = get_preset("tiny")
STUDENT = f"student_{TINY.student}"


def save_tiny_heads(folder: Path) -> Path:
    """mapper, strength head and student (+ sidecars) of the tiny preset in ``folder``, seeded; returns it."""
    g = create_generator(TINY)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        save_mapper(folder / "mapper.safetensors", Mapper(MapperConfig(width=32)).set_centres(torch.zeros(768), 1.0, g.w_avg),
                    {"preset": "tiny", "encoder": "teacher", "train_config": {"steps": 300, "batch": 32},
                     "wplus_mse_final": 0.12, "wplus_mse_mean_latent": 0.235})
        head = StrengthPredictor(w_avg=g.w_avg)
        save_weights(folder / "strength.safetensors", head.state_dict(),
                     {"kind": STRENGTH_KIND, "config": head.config.to_dict(), "training": {"steps": 60, "batch": 8}})
    save_student(create_student(TINY), folder / f"{STUDENT}.safetensors", {"preset": "tiny", "teacher": "tiny CLIP"})
    return folder


def save_tiny_refiner(folder: Path, varied: bool = False) -> Path:
    """A seeded tiny refiner (+ sidecar) in ``folder`` as `train refiner` leaves it; returns its path. Its
    residual is 0.01 on every used slot whatever it sees (its output layer is zero but for the bias), so what it
    did to a latent is known: k iterations add 0.01 k. ``varied``: a residual that depends on both images
    (_export_tiny.varied_refiner), for comparing runtimes."""
    from _export_tiny import varied_refiner

    from celeblook.models.refiner import REFINER_KIND, Refiner, RefinerConfig

    config = RefinerConfig(backbone=TINY.refiner_backbone, backbone_kwargs=dict(TINY.refiner_kwargs), input_size=64,
                           render_size=64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        refiner = varied_refiner(config) if varied else Refiner(config)
        if not varied:
            refiner.out.bias.data.fill_(0.01)
    path = folder / "refiner.safetensors"
    save_weights(path, refiner.state_dict(), {"kind": REFINER_KIND, "config": refiner.config.to_dict(),
                                              "training": {"steps": 200, "batch": 16}, "provenance": {"preset": "tiny"}})
    return path
