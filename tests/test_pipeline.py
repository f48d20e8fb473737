"""The Pipeline API on the tiny preset: shapes and numbers, seeds, exact C=0, missing heads, bad values."""

import dataclasses
import math

import pytest
import torch
from PIL import Image

from celeblook.errors import InputError, WeightsError
from celeblook.models import create_generator
from celeblook.pipeline import Pipeline, load_mapper_head, load_strength_head
from celeblook.presets import get_preset


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return Pipeline.from_preset("tiny", weights=tmp_path_factory.mktemp("no_heads"))


@pytest.fixture(scope="module")
def face(pipe):
    return pipe.random_faces([7], size=256).faces[0]


def test_random_faces_shapes_labels_and_seeds(pipe):
    result = pipe.random_faces([1, 2, 1], psi=0.5, size=256)
    assert [f.image.size for f in result.faces] == [(256, 256)] * 3
    assert all(f.wplus.shape == (23, 512) and f.wplus.dtype == torch.float32 for f in result.faces)
    assert torch.equal(result.faces[0].wplus, result.faces[2].wplus)
    assert not torch.equal(result.faces[0].wplus, result.faces[1].wplus)
    assert result.faces[0].scores == {"seed": 1, "psi": 0.5, "generator_calls": 1}
    assert any("untrained" in n for n in result.notices)


def test_invert_returns_similarity_and_refines(pipe, face):
    plain = pipe.invert(face.image, size=256)
    assert plain.faces[0].scores["generator_calls"] == 1
    assert -1 <= plain.faces[0].scores["clip_similarity"] <= 1
    refined = pipe.invert(face.image, refine_steps=2, size=256)
    assert refined.faces[0].scores["generator_calls"] == 4  # 3 optimisation renders + the final one
    assert any("refined for 2 steps" in n for n in refined.notices)


def test_text_to_face_seed_determines_the_result(pipe):
    a = pipe.text_to_face("a smiling woman", seed=3, size=256).faces[0]
    b = pipe.text_to_face("a smiling woman", seed=3, size=256).faces[0]
    c = pipe.text_to_face("a smiling woman", seed=4, size=256).faces[0]
    assert torch.equal(a.wplus, b.wplus) and a.image.tobytes() == b.image.tobytes()
    assert not torch.equal(a.wplus, c.wplus)
    assert set(a.scores) >= {"text_score", "generator_calls", "seed", "psi"}
    slow = pipe.text_to_face("a smiling woman", seed=3, size=256, optimize_steps=2)
    assert slow.faces[0].scores["generator_calls"] == 4 and any("slow path" in n for n in slow.notices)


def test_edit_with_zero_strength_returns_the_input_exactly(pipe, face):
    edited = pipe.edit(face.wplus, "a face with glasses", strength=0.0, size=256).faces[0]
    assert torch.equal(edited.wplus, face.wplus)
    assert edited.scores["C"] == 0.0 and math.isclose(edited.scores["clip_similarity"], 1.0, abs_tol=1e-5)
    same = pipe.edit(face.wplus, "a face", source="a face", strength=0.8, size=256).faces[0]
    assert torch.equal(same.wplus, face.wplus)  # identical prompts: zero direction
    moved = pipe.edit(face.wplus, "a face with glasses", strength=0.8, size=256).faces[0]
    assert not torch.equal(moved.wplus, face.wplus) and moved.scores["generator_calls"] == 2


def test_oracle_strength_and_image_source(pipe, face):
    result = pipe.edit(face.wplus, "a face with glasses", strength="oracle", size=256)
    scores = result.faces[0].scores
    # at least: the original once (the oracle reuses its embedding), the probe at c_max, the edit
    assert 0 <= scores["C"] <= 0.8 and scores["generator_calls"] >= 3
    image_source = pipe.edit(face.wplus, "a face with glasses", source="<image>", strength=0.3, size=256)
    assert image_source.faces[0].wplus.shape == (23, 512)


def test_sweep_and_morph_frames(pipe, face):
    other = pipe.random_faces([8], size=256).faces[0]
    sweep = pipe.sweep(face.wplus, "a face with glasses", c_max=0.6, n_frames=3, size=256)
    assert [round(f.scores["C"], 6) for f in sweep.faces] == [0.0, 0.3, 0.6]
    assert torch.equal(sweep.faces[0].wplus, face.wplus)
    morph = pipe.morph(face.wplus, other.wplus, n_frames=3, size=256)
    assert torch.equal(morph.faces[0].wplus, face.wplus) and torch.equal(morph.faces[-1].wplus, other.wplus)
    mix = pipe.morph(face.wplus, other.wplus, n_frames=2, size=256, mode="style_mix", crossover=8)
    assert torch.equal(mix.faces[-1].wplus[:8], face.wplus[:8])
    assert torch.equal(mix.faces[-1].wplus[8:], other.wplus[8:])


def test_tiny_has_a_labelled_seeded_strength_head(pipe, face):
    assert pipe.missing() == []
    learned = pipe.edit(face.wplus, "a face with glasses", strength="learned", size=256)
    assert 0 < learned.faces[0].scores["C"] < pipe.strength.config.c_max
    assert any("strength head: seeded random weights (untrained)" in n for n in learned.notices)


def test_missing_heads_name_the_train_command(pipe, face, tmp_path):
    trained_tiny = dataclasses.replace(get_preset("tiny"), trained=True)  # a preset without a seeded fallback
    strength, _, missing_strength = load_strength_head(trained_tiny, tmp_path, pipe.generator)
    assert strength is None and "python -m celeblook train strength --preset tiny" in missing_strength[0]
    no_strength = Pipeline(pipe.preset, pipe.generator, pipe.clip, pipe.encoder, pipe.mapper, None,
                           missing=missing_strength)
    with pytest.raises(WeightsError, match="python -m celeblook train strength"):
        no_strength.edit(face.wplus, "a face with glasses", strength="learned", size=256)
    mapper, _, _, missing = load_mapper_head(trained_tiny, tmp_path, create_generator("tiny"))
    assert mapper is None and "python -m celeblook train mapper --preset tiny" in missing[0]
    no_mapper = Pipeline(pipe.preset, pipe.generator, pipe.clip, pipe.encoder, None, missing=missing)
    with pytest.raises(WeightsError, match="train mapper"):
        no_mapper.edit(face.wplus, "a face with glasses", strength=0.5, size=256)
    with pytest.raises(WeightsError, match="train mapper"):
        no_mapper.invert(face.image, size=256)


@pytest.mark.parametrize("call, match", [
    (lambda p, w: p.random_faces([1], size=300), "size"),
    (lambda p, w: p.random_faces([1], psi=1.5), "psi"),
    (lambda p, w: p.random_faces([-1]), "seed"),
    (lambda p, w: p.text_to_face("   "), "empty"),
    (lambda p, w: p.edit(w, "glasses", strength="strong"), "strength"),
    (lambda p, w: p.edit(w, "glasses", strength=float("nan")), "strength"),
    (lambda p, w: p.edit(torch.full((23, 512), float("nan")), "glasses", strength=0.1), "NaN"),
    (lambda p, w: p.edit(torch.zeros(18, 512), "glasses", strength=0.1), "shape"),
    (lambda p, w: p.morph(w, w, n_frames=1), "n_frames"),
    (lambda p, w: p.morph(w, w, mode="blend"), "mode"),
    (lambda p, w: p.invert("photo.jpg"), "PIL"),
])
def test_bad_values_are_input_errors(pipe, face, call, match):
    with pytest.raises(InputError, match=match):
        call(pipe, face.wplus)


def test_unknown_preset_is_an_input_error():
    with pytest.raises(InputError, match="unknown preset"):
        Pipeline.from_preset("huge")


def test_cli_writes_pngs_and_latents_and_bad_input_exits_2(tmp_path, monkeypatch, capsys):
    from celeblook.cli import main

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    assert main(["text", "a smiling woman", "--preset", "tiny", "--size", "256", "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "text.png").size == (256, 256)
    assert main(["edit", "--latent", str(tmp_path / "text.npy"), "--target", "glasses", "--strength", "0",
                 "--preset", "tiny", "--size", "256", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "edit.npy").read_bytes() == (tmp_path / "text.npy").read_bytes()  # C = 0: same latent
    capsys.readouterr()
    assert main(["edit", "--latent", str(tmp_path / "missing.npy"), "--target", "glasses",
                 "--preset", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read latent")


def test_a_trained_student_is_the_image_encoder_else_the_teacher_with_a_note(pipe, tmp_path, monkeypatch):
    from celeblook.models.student import StudentEncoder, create_student, save_student, student_path
    from celeblook.pipeline import pick_image_encoder

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path))
    trained_tiny = dataclasses.replace(get_preset("tiny"), trained=True)
    encoder, notices, missing = pick_image_encoder(trained_tiny, pipe.clip, "teacher")
    assert encoder is pipe.clip and "python -m celeblook train encoder --out weights --preset tiny" in missing[0]
    with pytest.raises(WeightsError, match="mapper reads the student"):
        pick_image_encoder(trained_tiny, pipe.clip, "student")
    save_student(create_student(get_preset("tiny")), student_path(trained_tiny.student))
    encoder, notices, missing = pick_image_encoder(trained_tiny, pipe.clip, "teacher")
    assert isinstance(encoder, StudentEncoder) and missing == [] and "student" in notices[0]
    monkeypatch.setattr("celeblook.models.create_generator", lambda preset: pipe.generator)  # no trained tiny G exists
    trained_pipe = Pipeline.from_preset(trained_tiny, weights=tmp_path / "no_heads")
    assert isinstance(trained_pipe.encoder, StudentEncoder)
    assert trained_pipe.clip.visual is None  # the teacher's image tower is not loaded when the student serves
    # untrained presets keep the teacher: a random student does not share the random teacher's space
    assert pick_image_encoder(get_preset("tiny"), pipe.clip, "teacher")[0] is pipe.clip
