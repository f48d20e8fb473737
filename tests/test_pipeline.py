"""The Pipeline API on the tiny preset: photos in, shapes and numbers, seeds, exact C=0, variants, missing
heads, and values as an API client sends them."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic_face import wild_photo

from celeblook.errors import InputError, WeightsError
from celeblook.factory import create_generator, create_image_encoder, create_mapper, create_strength, load_models
from celeblook.models.torch_engine import TorchEngine
from celeblook.pipeline import Face, PhotoStart, Pipeline, PromptStart
from celeblook.presets import get_preset
from celeblook.remedy import Missing, remedy


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return Pipeline(load_models("tiny", tmp_path_factory.mktemp("no_heads")))


@pytest.fixture(scope="module")
def face(pipe):
    return pipe.random_faces(7, size=256).faces[0]


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("photos") / "wild.jpg"
    wild_photo(10.0)[0].save(path, quality=92)
    return str(path)


def cosine(a, b) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1))


def without_heads(pipe: Pipeline, missing: tuple[str, ...], mapper=None, strength=None) -> Pipeline:
    """The tiny pipeline with only the given heads (None: absent, as on public weights alone)."""
    m = pipe.models
    engine = TorchEngine(m.generator, m.text_encoder, m.image_encoder, mapper, strength)
    return Pipeline(dataclasses.replace(m, engine=engine, mapper=mapper, strength=strength, missing=missing))


def test_random_faces_shapes_labels_and_seeds(pipe):
    result = pipe.random_faces(1, count=3, psi=0.5, size=256)
    assert [f.image.size for f in result.faces] == [(256, 256)] * 3
    assert all(f.wplus.shape == (23, 512) and f.wplus.dtype == np.float32 for f in result.faces)
    again = pipe.random_faces(2, count=1, psi=0.5, size=256).faces[0]
    assert np.array_equal(result.faces[1].wplus, again.wplus) and result.faces[1].image.tobytes() == again.image.tobytes()
    assert not np.array_equal(result.faces[0].wplus, result.faces[1].wplus)
    assert [f.scores for f in result.faces] == [{"seed": s, "psi": 0.5, "generator_calls": 1} for s in (1, 2, 3)]
    assert any("untrained" in n for n in result.notices)


def test_values_arrive_as_an_api_client_sends_them(pipe):
    as_text = pipe.random_faces("4", count="2", psi="0.6", size="256")
    as_numbers = pipe.random_faces(4, count=2, psi=0.6, size=256)
    assert [f.image.tobytes() for f in as_text.faces] == [f.image.tobytes() for f in as_numbers.faces]
    high_psi = pipe.random_faces(4, psi=1.2, size=256).faces[0]  # what the sliders offer, the pipeline accepts
    assert high_psi.scores["psi"] == 1.2


def test_invert_takes_a_photo_file_aligns_and_scores_what_it_made(pipe, photo_file):
    result = pipe.invert(photo_file, size=256)
    face = result.faces[0]
    assert result.crop.size == (1024, 1024) and face.image.size == (256, 256)
    assert face.scores["generator_calls"] == 1
    # the score is E_I's cosine of the crop and the reconstruction, recomputed here from the 8-bit PNG the
    # person gets (the pipeline scores the generator's float pixels: measured 3e-4 apart)
    expected = cosine(pipe.image_encoder.embed_images([result.crop]), pipe.image_encoder.embed_images([face.image]))
    assert face.scores["clip_similarity"] == pytest.approx(expected, abs=2e-3)
    pil = pipe.invert(PhotoStart(Image.open(photo_file)), size=256).faces[0]
    assert np.allclose(pil.wplus, face.wplus, atol=1e-5)  # a path and the image it holds: the same face


def test_invert_refines(pipe, face):
    plain = pipe.invert(PhotoStart(face.image, aligned=True), size=256).faces[0]
    seen = []
    refined = pipe.invert(PhotoStart(face.image, aligned=True), refine_steps=2, size=256,
                          progress=lambda fraction, message: seen.append((fraction, message)))
    assert refined.faces[0].scores["generator_calls"] == 4  # 3 optimisation renders + the final one
    assert [f for f, _ in seen] == [0.0, 0.5, 1.0] and seen[0][1].startswith("slow path: 2 optimisation steps")
    assert seen[1][1].startswith("refining the inversion: step 1/2")
    assert seen[1][1].endswith(" s left") and seen[2][1].endswith("~0 s left")  # a remaining-time estimate
    note = next(n for n in refined.notices if "refined for 2 steps" in n)
    before, after = (float(x) for x in note.split("loss ")[1].split(" -> "))
    assert after < before and not np.array_equal(refined.faces[0].wplus, plain.wplus)


def test_a_slow_request_says_how_long_it_will_take_before_it_starts(pipe, face):
    per_step = pipe.calibrate()  # the app does this at start when its requests take slow paths
    assert per_step > 0
    seen = []
    pipe.invert(PhotoStart(face.image, aligned=True), refine_steps=3, size=256, progress=lambda f, m: seen.append((f, m)))
    fraction, message = seen[0]  # before the first step
    assert fraction == 0.0 and message.startswith("slow path: 3 optimisation steps at 256 px, ~")
    assert message.endswith(" s per step on this machine)") and "expected" in message
    assert len(seen) == 4  # then one report per step


def test_text_to_face_seed_determines_the_result(pipe):
    a = pipe.text_to_face("a smiling woman", seed=3, size=256).faces[0]
    b = pipe.text_to_face("a smiling woman", seed=3, size=256).faces[0]
    c = pipe.text_to_face("a smiling woman", seed=4, size=256).faces[0]
    assert np.array_equal(a.wplus, b.wplus) and a.image.tobytes() == b.image.tobytes()
    assert not np.array_equal(a.wplus, c.wplus)
    text = pipe.text_encoder.embed_texts(["a smiling woman"])
    assert a.scores["text_score"] == pytest.approx(cosine(pipe.image_encoder.embed_images([a.image]), text), abs=2e-3)
    slow = pipe.text_to_face("a smiling woman", seed=3, size=256, optimize_steps=2)
    assert slow.faces[0].scores["generator_calls"] == 4 and any("slow path" in n for n in slow.notices)


def test_edit_variants_zero_strength_is_exact(pipe, face):
    result = pipe.edit(face, "a face with glasses", strengths=[0.0, 0.8, "learned"], size=256)
    zero, moved, learned = result.variants
    assert [v.name for v in result.variants] == ["manual", "manual", "learned"]
    assert np.array_equal(zero.face.wplus, face.wplus) and np.array_equal(result.original.wplus, face.wplus)
    assert zero.face.scores["C"] == 0.0 and math.isclose(zero.face.scores["clip_similarity"], 1.0, abs_tol=1e-5)
    assert not np.array_equal(moved.face.wplus, face.wplus) and moved.face.scores["generator_calls"] == 2
    assert moved.face.scores["clip_similarity"] < 0.9999
    assert 0 < learned.face.scores["C"] < pipe.strength.config.c_max
    same = pipe.edit(face.wplus, "a face", source="a face", strengths=[0.8], size=256).variants[0]
    assert np.array_equal(same.face.wplus, face.wplus)  # identical prompts: zero direction


def test_edit_starts_from_a_photo_or_a_prompt(pipe, photo_file):
    from_photo = pipe.edit(PhotoStart(photo_file), "a face with glasses", strengths=[0.0], size=256)
    assert from_photo.crop.size == (1024, 1024)
    assert np.allclose(from_photo.variants[0].face.wplus, pipe.invert(photo_file, size=256).faces[0].wplus)
    from_prompt = pipe.edit(PromptStart("a man", seed=5), "a face with glasses", strengths=[0.0], size=256)
    assert np.array_equal(from_prompt.original.wplus, pipe.text_to_face("a man", seed=5, size=256).faces[0].wplus)


def test_oracle_strength_says_when_it_returns_the_bound(pipe, face):
    """The seeded tiny models keep the similarity above the target up to c_max (their CLIP barely sees an edit;
    longer directions make the tiny generator overflow before it drops below 0.7), so the oracle returns the
    bound and says so; its bisection is checked where it brackets, in test_strength.py."""
    from celeblook.limits import C_MAX, TARGET_SIMILARITY

    bound = pipe.edit(face.wplus, "a face with glasses", strengths=["oracle", C_MAX], size=256).variants
    oracle, manual = bound
    assert oracle.face.scores["C"] == C_MAX and np.array_equal(oracle.face.wplus, manual.face.wplus)
    assert oracle.face.scores["clip_similarity"] > TARGET_SIMILARITY
    assert oracle.face.scores["generator_calls"] == 3  # the original, the one probe at c_max, the edit
    assert len(oracle.notices) == 1 and "returned the bound" in oracle.notices[0] and manual.notices == []
    assert f"reached {oracle.face.scores['clip_similarity']:.3f}" in oracle.notices[0]


def test_an_image_source_edits_from_the_face_itself(pipe, face):
    image_source = pipe.edit(face.wplus, "a face with glasses", source="<image>", strengths=[0.3], size=256)
    assert not np.array_equal(image_source.variants[0].face.wplus, face.wplus)


def test_sweep_and_morph_frames(pipe, face):
    other = pipe.random_faces(8, size=256).faces[0]
    sweep = pipe.sweep(face.wplus, "a face with glasses", c_max=0.6, n_frames=3, size=256)
    assert [round(f.scores["C"], 6) for f in sweep.faces] == [0.0, 0.3, 0.6]
    assert np.array_equal(sweep.faces[0].wplus, face.wplus)
    morph = pipe.morph(face.wplus, other, n_frames=3, size=256)
    assert np.array_equal(morph.faces[0].wplus, face.wplus) and np.array_equal(morph.faces[-1].wplus, other.wplus)
    mix = pipe.morph(face, other.wplus, n_frames=2, size=256, mode="style mix", crossover=8)
    assert np.array_equal(mix.faces[-1].wplus[:8], face.wplus[:8])
    assert np.array_equal(mix.faces[-1].wplus[8:], other.wplus[8:])
    to_prompt = pipe.morph(face, PromptStart("a famous actress"), n_frames=2, size=256)
    assert np.array_equal(to_prompt.faces[-1].wplus, pipe.text_to_face("a famous actress", size=256).faces[0].wplus)


def test_tiny_has_labelled_seeded_heads(pipe, face):
    assert pipe.missing() == []
    learned = pipe.edit(face.wplus, "a face with glasses", size=256)
    assert any("strength head: seeded random weights (untrained)" in n for n in learned.notices)
    assert any("mapper: seeded random weights (untrained)" in n for n in learned.notices)


def test_missing_heads_name_the_train_command_and_other_variants_still_run(pipe, face, tmp_path):
    trained_tiny = dataclasses.replace(get_preset("tiny"), trained=True)  # a preset without a seeded fallback
    strength, _, missing_strength = create_strength(trained_tiny, tmp_path, pipe.generator)
    assert strength is None and "`celeblook train strength --preset tiny --out weights/tiny`" in str(missing_strength[0])
    no_strength = without_heads(pipe, tuple(missing_strength), mapper=pipe.mapper)
    result = no_strength.edit(face.wplus, "a face with glasses", strengths=[0.5, "learned"], size=256)
    manual, learned = result.variants
    assert manual.face is not None and learned.face is None
    assert "learned C unavailable" in learned.notices[0] and "train strength" in learned.notices[0]
    mapper, _, _, missing = create_mapper(trained_tiny, tmp_path, create_generator("tiny"))
    assert mapper is None and "`celeblook train mapper --preset tiny --out weights/tiny`" in str(missing[0])
    no_mapper = without_heads(pipe, tuple(missing), strength=pipe.strength)
    with pytest.raises(WeightsError, match="train mapper"):
        no_mapper.sweep(face.wplus, "a face with glasses", n_frames=2, size=256)


@pytest.mark.parametrize("call, match", [
    (lambda p, w: p.random_faces(1, size=300), "size must be one of 256, 512, 1024, got 300"),
    (lambda p, w: p.random_faces(1, psi=1.5), "truncation psi must be from 0 to 1.2, got 1.5"),
    (lambda p, w: p.random_faces(-1), "seed must be from 0"),
    (lambda p, w: p.random_faces("seven"), "seed must be a number, got 'seven'"),
    (lambda p, w: p.random_faces(None), "seed is missing"),
    (lambda p, w: p.random_faces(1, count=9), "number of faces must be from 1 to 8"),
    (lambda p, w: p.random_faces(1, psi=float("nan")), "truncation psi must be from"),
    (lambda p, w: p.random_faces(1.5), "seed must be a whole number"),
    (lambda p, w: p.invert(PhotoStart(Image.new("RGB", (64, 64)), aligned=True), refine_steps=501), "steps must be from 0 to 500"),
    (lambda p, w: p.text_to_face("a face", optimize_steps=-1), "steps must be from 0 to 500"),
    (lambda p, w: p.text_to_face("   "), "empty"),
    (lambda p, w: p.text_to_face("\u200b\u200d\ufeff"), "the prompt is empty"),
    (lambda p, w: p.text_to_face(123), "the prompt must be text, got int"),
    (lambda p, w: p.edit(w, "glasses", strengths=["strong"]), "strength must be a number"),
    (lambda p, w: p.edit(w, "glasses", strengths=[float("nan")]), "strength must be a number"),
    (lambda p, w: p.edit(w, "glasses", strengths=[]), "at least one strength"),
    (lambda p, w: p.edit(torch.full((23, 512), float("nan")), "glasses"), "NaN"),
    (lambda p, w: p.edit(torch.zeros(18, 512), "glasses"), "shape"),
    (lambda p, w: p.edit("a latent", "glasses"), "cannot start from a str"),
    (lambda p, w: p.morph(w, w, n_frames=1), "frames must be from 2 to 48"),
    (lambda p, w: p.morph(w, w, mode="blend"), "mode"),
    (lambda p, w: p.morph(w, w, mode="style_mix", crossover=23), "crossover slot must be from 1 to 22"),
    (lambda p, w: p.invert(None), "no photo given"),
    (lambda p, w: p.morph(w, PhotoStart(None)), "the second photo: no photo given"),
    (lambda p, w: p.invert(PhotoStart(np.zeros((100, 100, 3), np.uint8))), "no face found in the photo"),
    (lambda p, w: p.invert(PhotoStart(Image.new("RGB", (64, 64)), aligned="maybe")), "already aligned must be true or false"),
])
def test_bad_values_are_one_line_input_errors(pipe, face, call, match):
    with pytest.raises(InputError, match=match) as caught:
        call(pipe, face.wplus)
    assert "\n" not in str(caught.value)


def test_unknown_preset_is_an_input_error():
    with pytest.raises(InputError, match="unknown preset"):
        Pipeline.from_pretrained("huge")


def test_cli_writes_pngs_and_latents_and_bad_input_exits_2(tmp_path, monkeypatch, capsys, photo_file):
    from celeblook.cli import main

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    assert main(["text", "a smiling woman", "--preset", "tiny", "--size", "256", "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "text.png").size == (256, 256)
    assert main(["edit", "--latent", str(tmp_path / "text.npy"), "--target", "glasses", "--strength", "0",
                 "--preset", "tiny", "--size", "256", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "edit.npy").read_bytes() == (tmp_path / "text.npy").read_bytes()  # C = 0: same latent
    assert main(["edit", photo_file, "--target", "glasses", "--strength", "0.5", "learned", "--preset", "tiny",
                 "--size", "256", "--out", str(tmp_path / "two")]) == 0
    assert {p.name for p in (tmp_path / "two").glob("*.png")} == {"edit_0_manual.png", "edit_1_learned.png"}
    assert main(["morph", photo_file, "--prompt-b", "a famous actress", "--frames", "2", "--preset", "tiny",
                 "--size", "256", "--out", str(tmp_path / "m")]) == 0
    assert len(list((tmp_path / "m").glob("morph_*.png"))) == 2
    assert main(["invert", photo_file, "--paste-back", "--preset", "tiny", "--size", "256", "--out", str(tmp_path / "i")]) == 0
    assert Image.open(tmp_path / "i" / "inversion_in_photo.png").size == Image.open(photo_file).size
    assert Image.open(tmp_path / "i" / "crop.png").size == (1024, 1024)
    capsys.readouterr()
    assert main(["edit", "--latent", str(tmp_path / "missing.npy"), "--target", "glasses",
                 "--preset", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: W+ file not found")
    assert main(["text", "a face", "--preset", "tiny", "--out", "/proc/celeblook-out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot create the output directory /proc/celeblook-out")


def test_a_trained_student_is_the_image_encoder_else_the_teacher_with_a_note(pipe, tmp_path, monkeypatch):
    from celeblook.models.student import StudentEncoder, create_student, save_student, student_path

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path))
    trained_tiny = dataclasses.replace(get_preset("tiny"), trained=True)
    clip = pipe.text_encoder
    encoder, notices, missing = create_image_encoder(trained_tiny, clip, "teacher")
    assert encoder is clip.visual and str(missing[0]).endswith(": run `celeblook train encoder --preset tiny --out weights`")
    with pytest.raises(WeightsError, match="mapper reads the student"):
        create_image_encoder(trained_tiny, clip, "student")
    save_student(create_student(get_preset("tiny")), student_path(trained_tiny.student))
    encoder, notices, missing = create_image_encoder(trained_tiny, clip, "teacher")
    assert isinstance(encoder, StudentEncoder) and missing == [] and "student" in notices[0]
    monkeypatch.setattr("celeblook.factory.create_generator", lambda preset: pipe.generator)  # no trained tiny G exists
    models = load_models(trained_tiny, weights=tmp_path / "no_heads")
    assert isinstance(models.image_encoder, StudentEncoder)
    assert models.text_encoder.visual is None  # the teacher's image tower is not loaded when the student serves
    # untrained presets keep the teacher: a random student does not share the random teacher's space
    assert create_image_encoder(get_preset("tiny"), clip, "teacher")[0] is clip.visual


def test_faces_made_earlier_are_starts(pipe, face):
    result = pipe.face_of(Face(face.image, face.wplus))
    assert result.faces[0].image is face.image


def test_without_a_mapper_every_request_takes_a_labelled_slow_path(pipe, face):
    """Public weights alone (no trained heads): inversion refines from the mean face, text to face optimises,
    and a manual edit is a CLIP-guided optimisation that raises the text score while the face stays."""
    missing = (Missing("mapper", "weights/tiny/mapper.safetensors", remedy("mapper", "tiny")),)
    bare = without_heads(pipe, missing)
    inverted = bare.invert(PhotoStart(face.image, aligned=True), size=256)
    assert inverted.faces[0].scores["generator_calls"] == 102 and any("slow path" in n for n in inverted.notices)
    target = "a face with glasses"
    result = bare.edit(face, target, strengths=[0.0, 0.8, "learned"], size=256)
    keep, edit, learned = result.variants
    assert np.array_equal(keep.face.wplus, face.wplus)  # C = 0: the start is the optimum, nothing moves
    before = keep.face.scores["text_score"]
    assert edit.face.scores["text_score"] > before + 0.01  # toward the prompt
    assert edit.face.scores["clip_similarity"] > 0.8  # the pixel and code pull keep the face
    pixels = np.abs(np.asarray(edit.face.image, np.float64) - np.asarray(face.image, np.float64)).mean()
    assert 0 < pixels < 40
    assert learned.face is None and "needs the trained mapper" in learned.notices[0]
    assert any("slow path: no mapper" in n for n in result.notices)
    with pytest.raises(WeightsError, match="train mapper"):
        bare.sweep(face, target, n_frames=2, size=256)


def test_a_sweep_of_an_edit_reuses_its_direction(pipe, face, monkeypatch):
    edited = pipe.edit(face.wplus, "a face with glasses", strengths=[0.5], size=256)
    assert edited.direction is not None and edited.direction.delta.shape == (1, 23, 512)
    fresh = pipe.sweep(face.wplus, "a face with glasses", c_max=0.6, n_frames=3, size=256)

    def no_encoding(*args, **kwargs):
        raise AssertionError("the prompts were encoded again")

    monkeypatch.setattr(pipe.engine, "embed_tokens", no_encoding)
    reused = pipe.sweep(edited, c_max=0.6, n_frames=3, size=256)
    assert [f.scores for f in reused.faces] == [f.scores for f in fresh.faces]
    assert all(np.array_equal(a.wplus, b.wplus) for a, b in zip(reused.faces, fresh.faces))
    slow = without_heads(pipe, ("mapper: not trained",), strength=pipe.strength)
    no_direction = dataclasses.replace(edited, direction=None)  # as the slow path (no mapper) returns an edit
    with pytest.raises(WeightsError, match="mapper: not trained"):
        slow.sweep(no_direction, n_frames=2, size=256)
