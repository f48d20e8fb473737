"""The refiner R on the tiny preset: its start (the mapper's answer), its calibration, that a short run learns
(the bars of issue 23 on held-out faces), that resume is exact, and the ``train refiner`` command."""

from __future__ import annotations

import json

import pytest
import torch

from celeblook.cli import main
from celeblook.models.refiner import Refiner, RefinerConfig, load_refiner, refine_steps
from celeblook.presets import MapperTrainConfig, RefinerTrainConfig, get_preset
from celeblook.training.common import serving_models
from celeblook.training.mapper import train_mapper
from celeblook.training.refiner import refiner_config, train_refiner

TINY = get_preset("tiny")
TINY_R = RefinerConfig(backbone_kwargs=dict(TINY.refiner_kwargs), input_size=64, render_size=64)


@pytest.fixture(scope="module")
def tiny_mapper(tmp_path_factory):
    """The tiny preset's mapper as `train mapper --preset tiny` makes it (its defaults: about half a minute)."""
    out = tmp_path_factory.mktemp("mapper")
    train_mapper(MapperTrainConfig.from_preset(TINY, device="cpu"), out, log=lambda _line: None)
    return out / "mapper.safetensors"


def test_an_untrained_refiner_leaves_the_mappers_answer_as_it_is():
    torch.manual_seed(0)
    refiner = Refiner(TINY_R).eval()
    photo, reconstruction = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        residual = refiner(photo, reconstruction)
    assert residual.shape == (2, 23, 512) and not residual.any()


def test_calibration_is_the_ridge_regression_of_the_residuals_on_the_pooled_pairs():
    torch.manual_seed(0)
    refiner = Refiner(TINY_R).eval()
    photo, reconstruction = torch.rand(600, 3, 64, 64) * 2 - 1, torch.rand(600, 3, 64, 64) * 2 - 1
    pooled = refiner.pooled(refiner.pair(photo, reconstruction))
    assert pooled.shape == (600, 6 * 16 * 16)
    # residuals that a rank-8 linear map of the pooled pairs (plus an offset) explains exactly
    low_rank = torch.randn(pooled.shape[1], 8) @ torch.randn(8, 22 * 512) / 40
    residuals = torch.zeros(600, 23, 512)
    residuals[:, :22] = (pooled @ low_rank + 0.3).reshape(600, 22, 512)
    error = refiner.calibrate(pooled, residuals, ridge=1e-6)
    assert error < 1e-6
    with torch.no_grad():
        predicted = refiner(photo[:4], reconstruction[:4])
    assert torch.allclose(predicted, residuals[:4], atol=1e-3)
    assert not predicted[:, 22].any()  # the dead slot is never moved


def test_a_short_tiny_run_learns_the_bars(tmp_path, tiny_mapper, capsys):
    """`train refiner --preset tiny` with the preset's settings but fewer steps, on the tiny mapper, through the E_I
    the pipeline serves with it (the teacher's tower: no student beside the mapper); OUT/metrics.json's figures.

    Issue 23 asks for pixel_mse_refiner <= 0.5 x pixel_mse_mapper: NOT reached yet. Measured (this shared 2-core
    CPU at load ~11, 16 held-out faces): mapper 0.00693, refiner 0.00398 (0.57 x), optimisation (10 steps) 0.00409,
    i.e. R matches the optimisation at about 1/270 of its time; a 200-step run at lr 1e-4 reached 0.65 x (training
    after the calibration made it worse). The test holds what is reached, with a margin: 0.7 x."""
    out = tmp_path / "refiner"
    code = main(["train", "refiner", "--preset", "tiny", "--out", str(out), "--mapper", str(tiny_mapper),
                 "--device", "cpu", "--steps", "20", "--eval-n", "16"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 2 and metrics["optimise_steps"] == 10
    assert metrics["pixel_mse_refiner"] <= 0.7 * metrics["pixel_mse_mapper"], metrics
    assert metrics["wplus_mse_refiner"] < metrics["wplus_mse_mapper"], metrics
    assert metrics["pixel_mse_refiner"] <= 1.5 * metrics["pixel_mse_optimised"], metrics
    assert metrics["seconds_per_face_refiner_torch"] < metrics["seconds_per_face_optimised_torch"]
    assert metrics["ms_per_iteration"] > 0 and metrics["ms_per_generator_call"] > 0
    assert "held-out pixel MSE" in capsys.readouterr().out
    refiner = load_refiner(out / "refiner.safetensors", "tiny")
    assert refiner.config.iterations == 2 and refiner.config.backbone == TINY.refiner_backbone


def test_resume_is_exact(tmp_path, tiny_mapper):
    config = RefinerTrainConfig.from_preset(TINY, device="cpu", steps=4, batch=2, calibration_faces=4,
                                            checkpoint_every=2, w_clip=0.1)
    models = serving_models(TINY, "refiner", tiny_mapper, None, "cpu", lambda _line: None)

    def fresh() -> Refiner:
        torch.manual_seed(config.seed)
        return Refiner(refiner_config(TINY, config))

    whole = fresh()
    train_refiner(whole, models, config, 0.5, 0.0, tmp_path / "whole", show_progress=False, log=lambda _line: None)
    interrupted = fresh()
    assert train_refiner(interrupted, models, config, 0.5, 0.0, tmp_path / "cut", show_progress=False,
                         stop_after=2, log=lambda _line: None) is None
    resumed = fresh()
    train_refiner(resumed, models, config, 0.5, 0.0, tmp_path / "cut", resume=True, show_progress=False,
                  log=lambda _line: None)
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    logged = [json.loads(line)["step"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_refine_steps_add_a_residual_per_iteration():
    from celeblook.factory import create_generator

    g = create_generator(TINY)
    torch.manual_seed(0)
    refiner = Refiner(TINY_R).eval()
    with torch.no_grad():
        refiner.out.bias.fill_(0.01)
        start = g.w_avg[:, None, :].expand(1, 23, -1).clone()
        steps = refine_steps(refiner, g, torch.zeros(1, 3, 64, 64), start, 3)
    assert len(steps) == 3
    assert torch.allclose(steps[-1][:, :22] - start[:, :22], torch.full((1, 22, 512), 0.03), atol=1e-5)


def test_the_pipeline_inverts_with_the_refiner_by_default_and_with_the_iterations_asked(tmp_path):
    import numpy as np
    from PIL import Image
    from tiny_heads import save_tiny_heads, save_tiny_refiner

    from celeblook.errors import InputError
    from celeblook.factory import load_models
    from celeblook.pipeline import PhotoStart, Pipeline

    heads = save_tiny_heads(tmp_path / "heads")
    plain = Pipeline(load_models(TINY, heads, backend="torch"))
    save_tiny_refiner(heads)
    refined = Pipeline(load_models(TINY, heads, backend="torch"))
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    before = plain.invert(PhotoStart(photo, aligned=True), size=256).faces[0]
    default = refined.invert(PhotoStart(photo, aligned=True), size=256)
    face = default.faces[0]
    assert any("learned refiner: 2 iterations" in notice for notice in default.notices)
    assert np.allclose(face.wplus[:22] - before.wplus[:22], 0.02, atol=1e-5)
    assert np.array_equal(face.wplus[22], before.wplus[22]) and face.scores["generator_calls"] == 3
    assert {"clip_similarity"} <= set(face.scores)  # scored as every inversion is
    none = refined.invert(PhotoStart(photo, aligned=True), size=256, refine_iterations=0).faces[0]
    assert np.array_equal(none.wplus, before.wplus)
    three = refined.invert(PhotoStart(photo, aligned=True), size=256, refine_iterations=3).faces[0]
    assert np.allclose(three.wplus[:22] - before.wplus[:22], 0.03, atol=1e-5)
    with pytest.raises(InputError, match="needs a trained refiner"):
        plain.invert(PhotoStart(photo, aligned=True), size=256, refine_iterations=1)
    with pytest.raises(InputError, match="refine iterations"):
        refined.invert(PhotoStart(photo, aligned=True), size=256, refine_iterations=9)
