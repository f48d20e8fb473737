"""One ONNX export of the tiny preset's models, shared by tests/test_export.py and tests/test_ort_backend.py.

Mapper, strength head and refiner are built directly (seeded random weights, small widths): parity of a graph does not
depend on training, and the export must not need trained weights.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from celeblook.export.graphs import model_graphs
from celeblook.export.onnx import export_models
from celeblook.export.preset import clip_constants
from celeblook.factory import create_generator
from celeblook.models.clip import create_clip
from celeblook.models.mapper import Mapper, MapperConfig
from celeblook.models.refiner import Refiner, RefinerConfig
from celeblook.models.strength import StrengthConfig, StrengthPredictor
from celeblook.models.student import create_student
from celeblook.presets import get_preset


@functools.cache
def tiny_models():
    preset = get_preset("tiny")
    generator = create_generator(preset)
    clip = create_clip(preset)
    student = create_student(preset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        mapper = Mapper(MapperConfig(width=64, depth=1)).eval().requires_grad_(False)
        mapper.set_centres(torch.randn(768) * 0.05, 0.3, generator.w_avg)
        strength = StrengthPredictor(StrengthConfig(hidden=32), generator.w_avg).eval().requires_grad_(False)
        refiner = varied_refiner(RefinerConfig(backbone=preset.refiner_backbone, backbone_kwargs=dict(preset.refiner_kwargs),
                                               input_size=64, render_size=256))
    return {"generator": generator, "clip": clip, "student": student, "mapper": mapper, "strength": strength,
            "refiner": refiner}


def varied_refiner(config: RefinerConfig) -> Refiner:
    """A refiner whose residual depends on both images (a trained one's zero-initialised readouts given small
    seeded weights), so parity and golden vectors test the whole graph, not a constant."""
    refiner = Refiner(config)
    with torch.no_grad():
        for layer in (refiner.features, refiner.out):
            layer.weight.normal_(0, 0.02)
            layer.bias.normal_(0, 0.01)
    return refiner.eval().requires_grad_(False)


def tiny_graphs():
    m = tiny_models()
    return model_graphs(m["generator"], m["student"], m["clip"], m["mapper"], m["strength"], m["refiner"])


@functools.cache
def tiny_export(root: Path) -> Path:
    """Export every tiny graph (fp32, fp16, int8 text encoder) into ``root/tiny_onnx``; returns the directory."""
    m = tiny_models()
    clip = m["clip"]
    constants = {
        "preset": "tiny",
        "w_avg": m["generator"].w_avg[0].tolist(),
        "clip": clip_constants(clip.visual.mean, clip.visual.std),
        "c_max": m["strength"].config.c_max,
    }
    out = root / "tiny_onnx"
    export_models(tiny_graphs(), out, fp16=True, int8=("text_encoder",), constants=constants, source={"preset": "tiny"})
    return out
