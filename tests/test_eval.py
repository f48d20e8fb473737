"""``python -m celeblook eval`` on the tiny preset, and its refusal when a trained preset lacks its heads."""

from __future__ import annotations

import json
import math

import pytest
from strength_heads import save_still_strength_head

from celeblook.cli import main
from celeblook.errors import WeightsError
from celeblook.evaluate import FACES_SEED_OFFSET, require_heads
from celeblook.presets import get_preset

KEYS = {
    "inversion": {"similarity", "similarity_refined", "generator_calls", "generator_calls_refined"},
    "edit": {"text_score_gain", "similarity_loss", "strength_mean"},
    "strength": {"abs_err_learned", "abs_err_fixed", "abs_err_oracle", "generator_calls_learned",
                 "generator_calls_fixed", "generator_calls_oracle"},
}


@pytest.fixture()
def no_heads(tmp_path, monkeypatch):
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path))  # tiny falls back to seeded heads
    return tmp_path


def test_eval_on_tiny_reports_finite_numbers_labelled_untrained(no_heads, tmp_path):
    out = tmp_path / "eval.json"
    code = main(["eval", "--preset", "tiny", "--n", "2", "--refine-steps", "2", "--edit-prompts", "1",
                 "--strength-pairs", "2", "--out", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    assert results["trained"] is False and "UNTRAINED" in results["label"]
    assert any("untrained" in notice for notice in results["notices"])
    for section, keys in KEYS.items():
        assert keys <= set(results[section]), section
        assert all(math.isfinite(results[section][k]) for k in keys), results[section]
    inversion, strength = results["inversion"], results["strength"]
    # the numbers are the pipeline's own for the seeded faces eval claims to use (z of seed 0's held-out stream,
    # psi 0.7, 256 px)
    plain, refined = pipeline_inversion_similarities(n=2, refine_steps=2)
    assert inversion["similarity"] == pytest.approx(plain, abs=1e-5)
    assert inversion["similarity_refined"] == pytest.approx(refined, abs=1e-4)
    assert abs(inversion["similarity_refined"] - inversion["similarity"]) > 1e-4  # refining changed the faces
    assert inversion["generator_calls"] == 1 and inversion["generator_calls_refined"] > 1
    assert strength["generator_calls_learned"] == 1 and strength["generator_calls_oracle"] >= 2
    assert results["edit"]["n_edits"] == 2


def pipeline_inversion_similarities(n: int, refine_steps: int, seed: int = 0, psi: float = 0.7, size: int = 256) -> tuple[float, float]:
    """Mean clip_similarity of plain and refined inversions of G(z_i), computed here without celeblook.evaluate."""
    import torch
    from PIL import Image

    from celeblook.media import to_uint8
    from celeblook.pipeline import PhotoStart, Pipeline

    pipeline = Pipeline.from_pretrained("tiny")
    generator = pipeline.generator
    z = torch.randn(n, 512, generator=torch.Generator().manual_seed(seed + FACES_SEED_OFFSET))
    with torch.no_grad():
        photos = [Image.fromarray(image) for image in to_uint8(generator(generator.z_to_wplus(z, psi), size=size))]
    plain = [pipeline.invert(PhotoStart(photo, aligned=True), size=size).faces[0].scores["clip_similarity"] for photo in photos]
    refined = [pipeline.invert(PhotoStart(photo, aligned=True), refine_steps, size=size).faces[0].scores["clip_similarity"]
               for photo in photos]
    return sum(plain) / n, sum(refined) / n


@pytest.mark.parametrize("where", ["installed", "--heads"])
def test_eval_uses_a_trained_strength_head_when_present(no_heads, tmp_path, where, capsys):
    """A head file in weights/tiny, or in the folder given with --heads, replaces the seeded stand-in (and its
    notice)."""
    folder = no_heads / "tiny" if where == "installed" else tmp_path / "run"
    save_still_strength_head(folder / "strength.safetensors")
    out = tmp_path / "eval.json"
    code = main(["eval", "--preset", "tiny", "--n", "1", "--refine-steps", "1", "--edit-prompts", "1",
                 "--strength-pairs", "2", "--out", str(out)] + (["--heads", str(folder)] if where == "--heads" else []))
    assert code == 0
    results = json.loads(out.read_text())
    assert results["heads"] == str(folder) and f"heads in {folder}" in capsys.readouterr().out
    assert not any("strength head: seeded" in notice for notice in results["notices"])
    assert results["edit"]["strength_mean"] < 1e-6 and results["edit"]["similarity_loss"] < 1e-4


def test_missing_heads_name_the_train_commands(no_heads, capsys):
    with pytest.raises(WeightsError) as err:
        require_heads(get_preset("ffhq"))
    message = str(err.value)
    assert "`celeblook train mapper --preset ffhq --out weights/ffhq`" in message
    assert "`celeblook train strength --preset ffhq --out weights/ffhq`" in message
    assert main(["eval", "--preset", "ffhq"]) == 2
    assert "train strength" in capsys.readouterr().err
    assert main(["eval", "--preset", "tiny", "--heads", str(no_heads / "typo")]) == 2  # not silently seeded heads
    assert "no heads folder" in capsys.readouterr().err
