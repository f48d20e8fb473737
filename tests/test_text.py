"""Prompts and edit directions with the tiny CLIP: truncation notices, exact zero directions, bad prompts."""

import numpy as np
import pytest
import torch

from celeblook.errors import InputError
from celeblook.factory import create_generator
from celeblook.models.clip import create_clip
from celeblook.models.mapper import Mapper, MapperConfig
from celeblook.models.torch_engine import TorchEngine
from celeblook.presets import get_preset
from celeblook.text.prompts import PROMPT_MAX_CHARS, check_prompt, edit_direction, embed_prompts, vary_embedding


@pytest.fixture(scope="module")
def clip():
    """The tiny preset's engine (text tower and a seeded mapper): what the pipeline embeds prompts with."""
    preset = get_preset("tiny")
    teacher = create_clip(preset)
    torch.manual_seed(0)
    mapper = Mapper(MapperConfig(width=64, depth=1)).set_centres(torch.zeros(768), 1.0, torch.randn(512)).eval()
    return TorchEngine(create_generator(preset), teacher, teacher.visual, mapper, None)


@pytest.fixture(scope="module")
def mapper(clip):
    return clip


def test_embeddings_are_unit_norm_and_long_prompts_are_reported(clip):
    embeddings, notices = embed_prompts(clip, ["a smiling woman", "a man with a beard"])
    assert embeddings.shape == (2, 768) and np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    assert notices == []
    _, notices = embed_prompts(clip, ["a face " + "with very long hair " * 30])
    assert len(notices) == 1 and "truncated to 77 tokens" in notices[0]


@pytest.mark.parametrize("prompt", ["", "   "])
def test_prompts_without_tokens_are_input_errors(clip, prompt):
    with pytest.raises(InputError, match="no words the text encoder can read"):
        embed_prompts(clip, [prompt])


@pytest.mark.parametrize("prompt, message", [
    ("", "the prompt is empty"), (" \n\t ", "the prompt is empty"), ("\u200b\u200c\u2060\ufeff", "the prompt is empty"),
    ("\x00\x07", "the prompt is empty"), (123, "the prompt must be text, got int"), (None, "must be text, got NoneType"),
])
def test_check_prompt_refuses_what_has_nothing_to_read(prompt, message):
    with pytest.raises(InputError, match=message):
        check_prompt(prompt)


def test_check_prompt_cleans_and_cuts_with_a_notice():
    assert check_prompt("  a \u200bface\n with  glasses ") == ("a face with glasses", [])
    text, notices = check_prompt("x" * (PROMPT_MAX_CHARS + 5), "target prompt")
    assert len(text) == PROMPT_MAX_CHARS and notices == [f"the target prompt was cut to its first {PROMPT_MAX_CHARS} characters"]


def test_identical_prompts_give_an_exactly_zero_direction(clip, mapper):
    e, _ = embed_prompts(clip, ["a face with glasses", "a face with glasses"])
    assert np.count_nonzero(edit_direction(mapper, e[:1], e[1:])) == 0
    e, _ = embed_prompts(clip, ["a face with glasses", "a face"])
    delta = edit_direction(mapper, e[:1], e[1:])
    assert delta.shape == (1, 23, 512) and np.abs(delta[:, :22]).max() > 0
    assert np.count_nonzero(delta[:, 22]) == 0  # the dead slot never moves


def test_seeded_variation(clip):
    e, _ = embed_prompts(clip, ["a smiling woman"])
    assert np.array_equal(vary_embedding(e, 0.5, seed=3), vary_embedding(e, 0.5, seed=3))
    assert not np.array_equal(vary_embedding(e, 0.5, seed=3), vary_embedding(e, 0.5, seed=4))
    assert np.linalg.norm(vary_embedding(e, 0.5, seed=3) - e) == pytest.approx(0.5, abs=1e-5)
