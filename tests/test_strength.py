"""Strength head, oracle and strength training on the tiny preset.

The tiny CLIP is random, so its image similarity falls only for large latent moves: the tests give every
prompt a unit-RMS mapper direction scaled by a per-prompt factor in [2, 10] (log-uniform), and use a
target of 0.975. The prompts then need very different C, which is the situation the head exists for.

Measured (this shared 2-core CPU, 30 steps of batch 8, 16 held-out pairs, seeds 0-5): abs err learned /
best fixed = 0.0117/0.0177, 0.0142/0.0239, 0.0102/0.0158, 0.0138/0.0217, 0.0140/0.0219, 0.0113/0.0237, i.e.
ratios 0.48-0.66; the oracle reaches ~0.003 with 4-5 generator calls. The test asserts a ratio below 0.8.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from tiny_heads import STUDENT, save_tiny_heads

from celeblook.data import load_prompts, prompt_split
from celeblook.errors import InputError, WeightsError
from celeblook.factory import create_generator
from celeblook.models.clip import create_clip
from celeblook.models.mapper import Mapper
from celeblook.models.strength import StrengthConfig, StrengthPredictor, load_strength
from celeblook.presets import get_preset
from celeblook.strength_oracle import oracle_strength
from celeblook.training.strength import (
    CHECKPOINT_NAME,
    StrengthTrainConfig,
    build_edit_bank,
    edit_angle,
    edit_similarity,
    evaluate_strength,
    torch_oracle,
    train_strength,
)

TARGET = 0.975
SIZE = 64  # the tiny generator's 64 px exit keeps the tests fast; the real default is 256


@pytest.fixture(scope="module")
def models():
    preset = get_preset("tiny")
    return create_generator(preset), create_clip(preset)


@pytest.fixture(scope="module")
def bank(models):
    g, clip = models
    torch.manual_seed(0)
    mapper = Mapper().set_centres(torch.zeros(768), 0.05, g.w_avg).eval().requires_grad_(False)
    source = clip.embed_texts(["a face"])
    prompts = load_prompts()
    scales = torch.exp(torch.empty(len(prompts)).uniform_(math.log(2), math.log(10),
                                                         generator=torch.Generator().manual_seed(0)))

    def direction(embeddings):
        delta = mapper(embeddings) - mapper(source)
        delta = delta / delta[:, :22].pow(2).mean((1, 2), keepdim=True).sqrt()
        return delta * scales[:, None, None]

    return build_edit_bank(prompts, clip.embed_texts, direction)


def test_prompt_bank_and_split():
    prompts = load_prompts()
    train, held = prompt_split(prompts)
    assert len(prompts) >= 200 and len(set(prompts)) == len(prompts)
    assert held == prompts[4::5] and not set(train) & set(held) and len(train) + len(held) == len(prompts)


def test_predictor_range_and_shape(models):
    g, _ = models
    head = StrengthPredictor(StrengthConfig(c_max=0.8), w_avg=g.w_avg)
    w = g.z_to_wplus(torch.randn(5, 512))
    c = head(w, torch.nn.functional.normalize(torch.randn(5, 768), dim=-1), torch.randn(5, 23, 512) * 100)
    assert c.shape == (5,) and bool(((c > 0) & (c < 0.8)).all())


def test_zero_strength_edit_returns_input(models, bank):
    g, clip = models
    w = g.z_to_wplus(torch.randn(2, 512, generator=torch.Generator().manual_seed(1)), 0.7)
    with torch.no_grad():
        assert torch.equal(g(w + 0.0 * bank.deltas[:2], size=SIZE), g(w, size=SIZE))
        sim = edit_similarity(g, clip, w, bank.deltas[:2], 0.0, SIZE)
    assert torch.allclose(sim, torch.ones(2), atol=1e-5)


def test_oracle_bisection_converges_and_counts_calls(models, bank):
    g, clip = models
    w = g.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(2)), 0.7)
    delta = bank.deltas[0] / bank.deltas[0, :22].pow(2).mean().sqrt() * 20  # RMS 20: the target lies inside
    calls = []
    counting = lambda x, size=None: (calls.append(1), g(x, size=size))[1]  # noqa: E731
    result = torch_oracle(counting, clip, w, delta, target=TARGET, c_max=0.8, tol=1e-3, max_iter=30, size=SIZE)
    c, n_calls = result  # unpacks as (C, generator_calls)
    assert result.bracketed and 0 < c < 0.8
    assert n_calls == len(calls) and 3 <= n_calls <= 32
    with torch.no_grad():
        reached = float(edit_similarity(g, clip, w, delta[None], c, SIZE)[0])
    assert abs(reached - TARGET) < 1e-3 and reached == pytest.approx(result.similarity, abs=1e-6)
    # a caller that already has the original's embedding saves that render
    calls.clear()
    with torch.no_grad():
        reference = clip.embed_tensor(g(w, size=SIZE))
    again = torch_oracle(counting, clip, w, delta, target=TARGET, c_max=0.8, tol=1e-3, max_iter=30, size=SIZE,
                            reference=reference)
    assert again.strength == result.strength and again.generator_calls == len(calls) == n_calls - 1


def test_oracle_unbracketed_target_returns_bound(models, bank):
    g, clip = models
    w = g.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(3)), 0.7)
    tiny_delta = bank.deltas[0] * 1e-3  # the edit barely changes the face: 0.5 is out of reach
    result = torch_oracle(g, clip, w, tiny_delta, target=0.5, c_max=0.8, size=SIZE)
    assert result.strength == 0.8 and not result.bracketed and result.generator_calls == 2
    assert "returned the bound" in result.note
    with pytest.raises(InputError, match="target similarity"):
        torch_oracle(g, clip, w, tiny_delta, target=1.5, size=SIZE)


def test_bisection_on_a_known_similarity_curve():
    probes = []

    def similarity(c: float) -> float:  # falls from 1 at C = 0 to 0.5 at C = 1: 0.7 is reached at C = 0.6
        probes.append(c)
        return 1 - 0.5 * c

    found = oracle_strength(similarity, target=0.7, c_max=1.0, tol=1e-4, max_iter=40, calls=1)
    assert found.bracketed and found.strength == pytest.approx(0.6, abs=2e-4)
    assert probes[0] == 1.0 and found.generator_calls == len(probes) + 1  # the bound first, plus the reference render


def test_untrained_head_keeps_edit_size_constant(models):
    """The log-RMS skip (gain -1) makes C * RMS(delta) independent of delta's size while C << c_max."""
    g, _ = models
    torch.manual_seed(0)
    head = StrengthPredictor(StrengthConfig(), w_avg=g.w_avg)
    delta = torch.randn(3, 23, 512)
    assert head.calibrate(torch.full((3,), 0.02), delta) == pytest.approx(math.log(0.02 / 0.78) + float(
        delta[:, :22].pow(2).mean((1, 2)).sqrt().log().median()), abs=1e-5)
    w, text = g.z_to_wplus(torch.randn(3, 512)), torch.nn.functional.normalize(torch.randn(3, 768), dim=-1)
    c1, c4 = head(w, text, delta), head(w, text, 4 * delta)
    assert torch.allclose(c1 / c4, torch.full((3,), 4.0), rtol=0.02)


def test_angle_loss_has_gradient_where_similarity_loss_has_none(models, bank):
    """Why training uses angles: at small C the similarity is flat (1 - O(C^2)), its angle is not."""
    g, clip = models
    w = g.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(4)), 0.7)
    c = torch.tensor([1e-3], requires_grad=True)
    sim = edit_similarity(g, clip, w, bank.deltas[:1], c, SIZE)
    grad_sim = torch.autograd.grad((sim - TARGET).pow(2).sum(), c)[0]
    theta = edit_angle(g, clip, w, bank.deltas[:1], c, SIZE)
    grad_angle = torch.autograd.grad((theta - math.acos(TARGET)).pow(2).sum(), c)[0]
    assert float(theta.detach().cos()) == pytest.approx(float(sim.detach()), abs=1e-6)
    assert float(grad_angle) < 0 and abs(float(grad_angle)) > 100 * abs(float(grad_sim))


def test_learned_strength_beats_best_fixed_on_held_out(models, bank, tmp_path):
    g, clip = models
    torch.manual_seed(0)
    head = StrengthPredictor(StrengthConfig(), w_avg=g.w_avg)
    config = StrengthTrainConfig.from_preset("tiny", steps=30, batch=8, lr=1e-3, target=TARGET, size=SIZE, seed=0)
    path = train_strength(head, g, clip, bank, config, tmp_path, show_progress=False)
    metrics = evaluate_strength(load_strength(path), g, clip, bank, n_pairs=16, target=TARGET, size=SIZE)
    # the premise: held-out pairs need different C (else one constant would be optimal)
    assert metrics["oracle_strength_std"] > 0.1
    # measured ratios 0.48-0.66 over seeds 0-5 (module docstring); 0.8 leaves room for platform noise
    assert metrics["abs_err_learned"] < 0.8 * metrics["abs_err_fixed"], metrics
    assert metrics["abs_err_oracle"] < metrics["abs_err_learned"]
    # the same comparison on the pairs the oracle brackets, and their share
    assert metrics["bracketed_share"] == pytest.approx(1 - metrics["oracle_unbracketed"] / 16)
    assert metrics["abs_err_learned_bracketed"] < metrics["abs_err_fixed_bracketed"]
    assert metrics["generator_calls_learned"] == 1 and metrics["generator_calls_oracle"] > 2


def test_resume_reproduces_uninterrupted_run(models, bank, tmp_path):
    g, clip = models

    def run(out, steps, resume=False):
        torch.manual_seed(0)
        head = StrengthPredictor(StrengthConfig(hidden=32), w_avg=g.w_avg)
        config = StrengthTrainConfig.from_preset("tiny", steps=steps, batch=2, target=TARGET, size=SIZE, seed=5, checkpoint_every=2)
        train_strength(head, g, clip, bank, config, out, resume=resume, show_progress=False)
        return head.state_dict()

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    assert (tmp_path / "b" / CHECKPOINT_NAME).exists()
    resumed = run(tmp_path / "b", 4, resume=True)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [int(line.split('"step": ')[1].split(",")[0]) for line in lines] == [1, 2, 3, 4]


def test_missing_head_weights_name_the_train_command(tmp_path):
    with pytest.raises(WeightsError, match="`celeblook train strength --preset ffhq --out weights/ffhq`"):
        load_strength(tmp_path / "strength.safetensors")


def test_cli_trains_and_writes_held_out_metrics(tmp_path, monkeypatch):
    from celeblook.cli import main

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))  # no mapper file: tiny's seeded one
    out = tmp_path / "run"
    assert main(["train", "strength", "--preset", "tiny", "--out", str(out), "--steps", "2", "--batch", "2",
                 "--eval-pairs", "2", "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("abs_err_learned", "abs_err_fixed", "abs_err_oracle"):
        assert 0 <= metrics[key] <= 2
    assert metrics["generator_calls_learned"] == 1 and metrics["generator_calls_oracle"] >= 2
    assert "untrained" in metrics["preset"]
    head = load_strength(out / "strength.safetensors")
    assert head.config.c_max == StrengthTrainConfig.from_preset("tiny").c_max == 1.0  # the preset's range of C
    assert metrics["target"] == 0.98 and math.isfinite(float(head.bias))  # and its target
    # no trained student anywhere: the pipeline serves tiny with the teacher's tower, and so the head learns
    assert json.loads((out / "strength.json").read_text())["provenance"]["image_encoder"] == "teacher"


def test_cli_trains_through_the_student_the_pipeline_serves_with_the_heads(tmp_path, monkeypatch, capsys):
    """The default E_I is the factory's for the mapper's folder (a student beside it); --student names another."""
    from celeblook.cli import main

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    heads = save_tiny_heads(tmp_path / "heads")
    other = save_tiny_heads(tmp_path / "other") / f"{STUDENT}.safetensors"
    common = ["train", "strength", "--preset", "tiny", "--mapper", str(heads / "mapper.safetensors"), "--steps", "1",
              "--batch", "2", "--eval-pairs", "2", "--device", "cpu"]
    for out, extra, student in ((tmp_path / "beside", [], heads / f"{STUDENT}.safetensors"),
                                (tmp_path / "named", ["--student", str(other)], other)):
        assert main([*common, "--out", str(out), *extra]) == 0
        provenance = json.loads((out / "strength.json").read_text())["provenance"]
        assert (provenance["image_encoder"], provenance["student"]) == ("student", str(student))
    assert main([*common, "--out", str(tmp_path / "none"), "--student", str(tmp_path / "nope.safetensors")]) == 2
    assert "student encoder weights not found" in capsys.readouterr().err


def test_cli_names_the_mapper_command_for_a_missing_mapper(tmp_path, capsys):
    from celeblook.cli import main

    code = main(["train", "strength", "--preset", "tiny", "--out", str(tmp_path / "run"),
                 "--mapper", str(tmp_path / "nope.safetensors")])
    assert code == 2 and "`celeblook train mapper --preset tiny --out weights/tiny`" in capsys.readouterr().err
