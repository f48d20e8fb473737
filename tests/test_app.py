"""The app's handlers called in-process on the tiny preset (real Pipeline, untrained random weights)."""

from __future__ import annotations

import os

os.environ["CELEBLOOK_PRESET"] = "tiny"

import gradio as gr
import numpy as np
import pytest
from PIL import Image

import app
from synthetic_face import wild_photo


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("photos") / "wild.jpg"
    wild_photo(10.0)[0].save(path, quality=92)
    return str(path)


def test_invert_aligns_reconstructs_and_offers_downloads(photo):
    crop, face, similarity, files, notes, state = app.invert({"path": photo}, False, 0, 256)
    assert crop.size == (1024, 1024) and face.size == (256, 256)
    assert -1.0 <= similarity <= 1.0
    png, npy = files
    assert Image.open(png).size == (256, 256)
    latent = np.load(npy)
    assert latent.shape == (23, 512) and latent.dtype == np.float32
    np.testing.assert_array_equal(latent, state["wplus"])
    assert "untrained" in notes


def test_seed_fully_determines_random_faces():
    gallery_a, _, _ = app.random_face(5, 3, 0.7, 256)
    gallery_b, _, _ = app.random_face(6, 1, 0.7, 256)
    again, _, _ = app.random_face(5, 3, 0.7, 256)
    assert [caption for _, caption in gallery_a] == ["seed 5", "seed 6", "seed 7"]
    pixels = [np.asarray(image) for image, _ in gallery_a]
    np.testing.assert_array_equal(pixels[1], np.asarray(gallery_b[0][0]))
    np.testing.assert_array_equal(pixels[0], np.asarray(again[0][0]))
    assert np.abs(pixels[0].astype(int) - pixels[1]).mean() > 1  # different seeds, different faces


def test_text_to_face_cuts_overlong_prompts_with_a_notice():
    face, score, files, notes, _ = app.text_to_face("a smiling woman " * 40, 3, 0.7, 0, 256)
    assert face.size == (256, 256) and -1 <= score <= 1 and len(files) == 2
    assert "truncated to 77 tokens" in notes
    _, _, _, notes, _ = app.text_to_face("a smiling woman " * 200, 3, 0.7, 0, 256)
    assert "cut to its first 1000 characters" in notes
    for empty in ("", "   \n "):
        with pytest.raises(gr.Error, match="empty"):
            app.text_to_face(empty, 0, 0.7, 0, 256)


def test_edit_from_the_last_face_shows_each_strength_and_a_sweep_gif():
    _, _, last = app.random_face(1, 1, 0.7, 256)
    original, manual, learned, oracle, table, gif, gif_file, notes, state = app.edit(
        "last face", None, False, "a big smile", "", 0.3, True, 5, 256, last
    )
    rows = {row[0]: row for row in table}
    assert rows["manual"][1] == pytest.approx(0.3)
    assert 0 <= rows["oracle"][1] <= app.C_MAX and rows["oracle"][4] > 1  # the oracle's cost in generator calls
    assert manual.size == oracle.size == original.size == (256, 256)
    assert 0 < rows["learned"][1] < app.C_MAX and rows["learned"][4] == rows["manual"][4]  # learned C costs no extra render
    gif_image = Image.open(gif)
    assert gif == gif_file and gif_image.n_frames == 2 * 5 - 2 and gif_image.info["loop"] == 0
    np.testing.assert_array_equal(state["wplus"], last["wplus"])  # edits do not replace the face being edited
    with pytest.raises(gr.Error, match="no face yet"):
        app.edit("last face", None, False, "smile", "", 0.3, False, 0, 256, None)


@pytest.mark.parametrize("mode", ["interpolate", "style mix"])
def test_morph_makes_a_bounded_gif(photo, mode):
    gif, gif_file, mixed, _ = app.morph("photo", {"path": photo}, "prompt", None, "a famous actor", False, mode, 8, 4, 90, True, 128, None)
    image = Image.open(gif)
    assert image.n_frames == 6 and image.size == (128, 128) and image.info["duration"] == 90
    assert (mixed is not None) == (mode == "style mix")


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: app.random_face(-1, 1, 0.7, 256), "seed must be between"),
        (lambda: app.random_face(0, 99, 0.7, 256), "number of faces"),
        (lambda: app.random_face(0, 1, float("nan"), 256), "truncation"),
        (lambda: app.random_face(0, 1, 0.7, 300), "size must be one of"),
        (lambda: app.text_to_face("x", "abc", 0.7, 0, 256), "seed must be a number"),
        (lambda: app.invert(None, False, 0, 256), "no photo"),
        (lambda: app.invert({"path": "/nonexistent.png"}, False, 0, 256), "not found"),
        (lambda: app.edit("photo", None, False, "smile", "", 5.0, False, 0, 256, None), "manual C"),
        (lambda: app.morph("photo", None, "prompt", None, "x", False, "blend", 8, 4, 90, True, 128, None), "mode"),
        (lambda: app.morph("photo", None, "prompt", None, "x", False, "interpolate", 8, 500, 90, True, 128, None), "frames"),
    ],
)
def test_out_of_range_values_are_refused_with_a_reason(call, message):
    with pytest.raises(gr.Error, match=message):
        call()


def test_status_names_the_preset_and_the_untrained_banner():
    status = app.status_markdown()
    assert "tiny" in status and "In the browser" in status and "#in-the-browser" in status
    for line in app.PIPELINE.missing():
        assert line in status
    assert "Untrained" in app.banner_markdown()


def test_real_preset_without_weights_starts_and_says_what_is_missing(tmp_path):
    """`python app.py` with no weights at all: the app builds, and the banner names the command to run."""
    import subprocess
    import sys

    env = dict(os.environ, CELEBLOOK_PRESET="ffhq", CELEBLOOK_WEIGHTS=str(tmp_path), HF_HUB_OFFLINE="1")
    code = "import app; print(app.banner_markdown()); print(app.status_markdown())"
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(app.__file__))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "weights" in run.stdout and "python -m celeblook" in run.stdout
