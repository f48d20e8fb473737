"""The refiner R on the tiny preset: its start (the mapper's answer), its calibration, that a short run learns
(the bars of issue 23 on held-out faces), that resume is exact, and the ``train refiner`` command."""

from __future__ import annotations

import json
import math
from dataclasses import replace

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
    refiner = Refiner(replace(TINY_R, grid=8)).eval()  # more pairs than readout inputs, as a calibration has
    photo, reconstruction = torch.rand(600, 3, 64, 64) * 2 - 1, torch.rand(600, 3, 64, 64) * 2 - 1
    pooled = refiner.pooled(refiner.pair(photo, reconstruction))
    assert pooled.shape == (600, 6 * 8 * 8)
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
    the pipeline serves with it (the teacher's tower: no student beside the mapper); OUT/metrics.json's figures
    hold issue 23's bars: pixel_mse_refiner <= 0.5 x pixel_mse_mapper and within 1.5 x of the optimisation's, at a
    fraction of its time (docs/training.md: the preset's 200 steps reached 0.29 x; its calibration alone 0.33 x)."""
    out = tmp_path / "refiner"
    code = main(["train", "refiner", "--preset", "tiny", "--out", str(out), "--mapper", str(tiny_mapper),
                 "--device", "cpu", "--steps", "20", "--eval-n", "16"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 2 and metrics["optimise_steps"] == 10
    assert metrics["pixel_mse_refiner"] <= 0.5 * metrics["pixel_mse_mapper"], metrics
    assert metrics["wplus_mse_refiner"] < metrics["wplus_mse_mapper"], metrics
    assert metrics["pixel_mse_refiner"] <= 1.5 * metrics["pixel_mse_optimised"], metrics
    assert metrics["seconds_per_face_refiner_torch"] < metrics["seconds_per_face_optimised_torch"]
    assert metrics["ms_per_iteration"] > 0 and metrics["ms_per_generator_call"] > 0
    # the tiny preset's random pictures hold no face: the identity figures say so rather than give a number
    assert metrics["identity_faces"] == 0
    assert math.isnan(metrics["identity_distance_mapper"]) and math.isnan(metrics["identity_distance_refiner"])
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


def test_a_poor_mapper_neither_makes_the_refiner_diverge_nor_starts_it_from_a_worse_step(tmp_path):
    """After a very short mapper run G's pixels reach ~1e7 on its latents: R reads both images clamped as a photo
    holds them (its loss and figures stay finite), and a calibrated step that makes fresh faces worse is dropped."""
    mapper = tmp_path / "mapper"
    train_mapper(MapperTrainConfig.from_preset(TINY, device="cpu", steps=20), mapper, log=lambda _line: None)
    lines: list[str] = []
    config = RefinerTrainConfig.from_preset(TINY, device="cpu", steps=2, batch=4, calibration_faces=8)
    models = serving_models(TINY, "refiner", mapper / "mapper.safetensors", None, "cpu", lambda _line: None)
    torch.manual_seed(config.seed)
    refiner = Refiner(refiner_config(TINY, config))
    train_refiner(refiner, models, config, 0.5, 0.0, tmp_path / "refiner", show_progress=False, log=lines.append)
    calibrated = next(line for line in lines if line.startswith("refiner calibrated"))
    assert "fresh faces' pixel MSE" in calibrated, calibrated
    logged = [json.loads(line) for line in (tmp_path / "refiner" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(entry["loss"]) for entry in logged), logged
    assert all(torch.isfinite(value).all() for value in refiner.state_dict().values())


def test_the_identity_figures_average_the_faces_found_in_photo_and_both_reconstructions():
    """evaluate_refiner's identity distance before and after R (ffhq: faces dlib finds), on real photos: a stand-in
    generator renders latent 0 as the astronaut and latent 1 as Grace Hopper; a picture without a face is skipped."""
    import numpy as np
    from PIL import Image
    from real_photos import astronaut, grace_hopper

    from celeblook.photo.align import align_face
    from celeblook.photo.identity import face_descriptor
    from celeblook.training.refiner import identity_figures

    faces = [np.array(align_face(photo, 256).image) for photo in (astronaut(), grace_hopper())]
    pictures = [torch.from_numpy(face).permute(2, 0, 1).float() / 127.5 - 1 for face in faces]
    pictures.append(torch.zeros(3, 256, 256))  # latent 2: no face

    def generator(wplus: torch.Tensor, size: int) -> torch.Tensor:
        assert size == 256
        return torch.stack([pictures[int(w[0, 0])] for w in wplus])

    def latents(*which: int) -> torch.Tensor:
        return torch.tensor(which, dtype=torch.float)[:, None, None].expand(-1, 23, 512)

    # photo, mapper's answer, R's answer per face: (astronaut, astronaut, Hopper), (Hopper, Hopper, Hopper), (none, ...)
    photos = [Image.fromarray(image) for image in (*faces, np.zeros((256, 256, 3), np.uint8))]
    figures = identity_figures(generator, photos, latents(0, 1, 0), latents(1, 1, 0))
    assert figures["identity_faces"] == 2
    assert figures["identity_distance_mapper"] < 1e-6  # each reconstruction was the photo itself
    different = np.linalg.norm(face_descriptor(Image.fromarray(faces[0])) - face_descriptor(Image.fromarray(faces[1])))
    assert abs(figures["identity_distance_refiner"] - different / 2) < 1e-6
