"""``python -m celeblook eval`` on the tiny preset, and its refusal when a trained preset lacks its heads."""

from __future__ import annotations

import json
import math

import pytest

from celeblook.cli import main
from celeblook.errors import WeightsError
from celeblook.evaluate import EvalConfig, evaluate, require_heads
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
    assert -1 <= inversion["similarity"] <= 1 and -1 <= inversion["similarity_refined"] <= 1
    assert inversion["generator_calls"] == 1 and inversion["generator_calls_refined"] > 1
    assert strength["generator_calls_learned"] == 1 and strength["generator_calls_oracle"] >= 2
    assert results["edit"]["n_edits"] == 2


def test_eval_uses_a_trained_strength_head_when_present(no_heads):
    """A head file in weights/tiny replaces the seeded stand-in (and its notice)."""
    import torch

    from celeblook.models.heads_io import save_weights
    from celeblook.models.strength import STRENGTH_KIND, StrengthConfig, StrengthPredictor

    head = StrengthPredictor(StrengthConfig())
    torch.nn.init.constant_(head.bias, -20.0)  # C ~ 0: edits leave the face as it is
    save_weights(no_heads / "tiny" / "strength.safetensors", head.state_dict(),
                 {"kind": STRENGTH_KIND, "config": head.config.to_dict()})
    results = evaluate("tiny", EvalConfig(n=1, refine_steps=1, edit_prompts=1, strength_pairs=2))
    assert not any("strength head: seeded" in notice for notice in results["notices"])
    assert results["edit"]["strength_mean"] < 1e-6 and results["edit"]["similarity_loss"] < 1e-4


def test_missing_heads_name_the_train_commands(no_heads, capsys):
    with pytest.raises(WeightsError) as err:
        require_heads(get_preset("ffhq"))
    message = str(err.value)
    assert "python -m celeblook train mapper --preset ffhq" in message
    assert "python -m celeblook train strength --preset ffhq" in message
    assert main(["eval", "--preset", "ffhq"]) == 2
    assert "train strength" in capsys.readouterr().err
