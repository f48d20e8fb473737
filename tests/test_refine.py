"""W+ optimisation at the 256 px exit: refinement lowers its loss, leaves the dead slot, is deterministic."""

import numpy as np
import pytest
import torch
from PIL import Image

from celeblook.factory import create_generator
from celeblook.media import to_uint8
from celeblook.models.clip import create_clip
from celeblook.presets import get_preset
from celeblook.refine import refine_inversion, text_to_face_optimize


@pytest.fixture(scope="module")
def models():
    preset = get_preset("tiny")
    return create_generator(preset), create_clip(preset)


def _target_and_start(g):
    """A generated face as the photo to refine toward, and the mean latent (numpy, as the pipeline holds it)."""
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        target = Image.fromarray(to_uint8(g(g.z_to_wplus(torch.randn(1, 512, generator=gen), 0.8), size=256))[0])
    start = g.w_avg[:, None, :].expand(1, 23, -1).clone().numpy()
    start[:, 22] = 7.0  # marks the dead slot
    return target, start


def test_refinement_lowers_its_loss_and_keeps_the_dead_slot(models):
    g, clip = models
    target, start = _target_and_start(g)
    result = refine_inversion(g, clip, target, start, steps=5)
    assert len(result.losses) == 6 and result.generator_calls == 6
    assert result.losses[-1] < result.losses[0]
    assert np.array_equal(result.wplus[:, 22], start[:, 22])
    again = refine_inversion(g, clip, target, start, steps=5)
    assert np.array_equal(again.wplus, result.wplus)  # nothing random


def test_clip_guided_text_to_face_raises_the_text_score(models):
    g, clip = models
    text = clip.embed_texts(["a smiling woman with red hair"]).numpy()
    _, start = _target_and_start(g)
    progress = []
    result = text_to_face_optimize(g, clip, text, start, steps=4, lr=0.05, progress=lambda f, m: progress.append(f))
    assert result.losses[-1] < result.losses[0]
    assert progress == [0.25, 0.5, 0.75, 1.0]

