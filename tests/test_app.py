"""The app's handlers called in-process on the tiny preset (real Pipeline, untrained random weights)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

os.environ["CELEBLOOK_PRESET"] = "tiny"

import gradio as gr
import numpy as np
import procs
import pytest
from PIL import Image
from synthetic_face import wild_photo

import app
from celeblook import app_support
from celeblook.limits import Choice
from celeblook.pipeline import REQUESTS, PhotoStart
from celeblook.pipeline.requests import limit_of


def uploaded(path: Path) -> dict:
    """What Gradio hands the handler for an upload: a file its upload route wrote into the upload folder."""
    folder = Path(app.UPLOADS) / f"test-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    copy = str(shutil.copy(path, folder / path.name))
    app.demo.upload_file_set.add(copy)
    return {"path": copy}


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "wild.jpg"
    wild_photo(10.0)[0].save(path, quality=92)
    return path


@pytest.fixture(scope="module")
def photo(photo_file) -> dict:
    return uploaded(photo_file)


def test_invert_aligns_reconstructs_and_offers_downloads(photo, photo_file):
    face, pasted, crop, found, similarity, distance, files, notes, state = app.invert(photo, False, 0, 0, 256)
    assert Image.open(crop).size == (1024, 1024) and Image.open(face).size == (256, 256)
    assert Image.open(pasted).size == Image.open(photo_file).size  # the result in the user's own photo
    assert [caption for _, caption in found] == ["face 0 (used)"]
    assert distance is None and "identity distance: not measured (no face found in the result)" in notes  # tiny: patterns
    expected = app.PIPELINE.invert(PhotoStart(str(photo_file)), size=256).faces[0]
    assert similarity == pytest.approx(expected.scores["clip_similarity"], abs=1e-4)
    png, npy = files
    assert Image.open(png).size == (256, 256)
    latent = np.load(npy)
    assert latent.shape == (23, 512) and latent.dtype == np.float32
    np.testing.assert_array_equal(latent, state)  # the session keeps the latent, not the images
    assert "untrained" in notes


def test_seed_fully_determines_random_faces():
    gallery_a, _, _ = app.random_face(5, 3, 0.7, 256)
    gallery_b, _, _ = app.random_face(6, 1, 0.7, 256)
    again, _, _ = app.random_face(5, 3, 0.7, 256)
    assert [caption for _, caption in gallery_a] == ["seed 5", "seed 6", "seed 7"]
    pixels = [np.asarray(Image.open(path)) for path, _ in gallery_a]
    np.testing.assert_array_equal(pixels[1], np.asarray(Image.open(gallery_b[0][0])))
    np.testing.assert_array_equal(pixels[0], np.asarray(Image.open(again[0][0])))
    assert np.abs(pixels[0].astype(int) - pixels[1]).mean() > 1  # different seeds, different faces
    assert gallery_a[0][0] != again[0][0]  # the same face twice: two files, neither rewritten


def test_text_to_face_cuts_overlong_prompts_with_a_notice():
    face, score, files, notes, state = app.text_to_face("a smiling woman " * 40, 3, 0.7, 0, 256)
    assert Image.open(face).size == (256, 256) and len(files) == 2
    assert score == pytest.approx(app.PIPELINE.text_to_face("a smiling woman " * 40, 3, 0.7, 256).faces[0].scores["text_score"], abs=1e-4)
    assert "truncated to 77 tokens" in notes
    _, _, _, notes, _ = app.text_to_face("a smiling woman " * 200, 3, 0.7, 0, 256)
    assert "cut to its first 1000 characters" in notes
    for empty in ("", "   \n ", "\u200b\u200b"):
        with pytest.raises(gr.Error, match="empty"):
            app.text_to_face(empty, 0, 0.7, 0, 256)


def test_user_text_comes_back_plain_and_is_shown_as_text():
    """Notes and errors are plain text for people and API callers (issue 21: `tiny \\(untrained`, `&amp;&amp;`);
    what a user typed is never read as markup because the notes box shows text, not Markdown or HTML."""
    hostile = "<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1)) " + "word " * 80
    _, _, _, notes, _ = app.text_to_face(hostile, 3, 0.7, 0, 256)
    assert "<img src=x onerror=alert(1)> **bold** [link](javascript:aler" in notes  # the notice quotes 60 characters
    assert "tiny (untrained random weights)" in notes and "\\" not in notes and "&lt;" not in notes
    with pytest.raises(gr.Error) as caught:
        app.random_face("<b>1</b>", 1, 0.7, 256)
    assert "<b>1</b>" in caught.value.message and "&lt;" not in caught.value.message
    boxes = [block for block in app.demo.blocks.values() if getattr(block, "label", None) == "Notes"]
    assert len(boxes) == 5 and all(isinstance(box, gr.Textbox) and not box.interactive for box in boxes)


def test_markup_escapes_only_where_text_is_rendered():
    """The banner and Status render Markdown: plain text goes in an HTML block, escaped with entities only (no
    backslashes, which showed in URLs: "https://huggingface\\.co")."""
    block = app.support.text_block("see https://huggingface.co/x_y && <b>(tiny)</b>", bullets=True)
    assert block == "<ul>\n<li>see https://huggingface.co/x_y &amp;&amp; &lt;b&gt;(tiny)&lt;/b&gt;</li>\n</ul>\n"
    assert "\\" not in app.status_markdown() and "\\" not in app.banner_markdown()


def test_edit_from_the_last_face_shows_each_strength_and_a_sweep_gif():
    _, _, last = app.random_face(1, 1, 0.7, 256)
    original, manual, learned, oracle, table, in_photo, gif, gif_file, notes, state = app.edit(
        "last face", None, False, 0, "a big smile", "", 0.3, True, 5, 256, last
    )
    assert in_photo == []  # no photo to paste into
    rows = {row[0]: row for row in table}
    assert rows["manual"][1] == pytest.approx(0.3)
    assert 0 <= rows["oracle"][1] <= app.C_MAX and rows["oracle"][5] > 1  # the oracle's cost in generator calls
    assert Image.open(manual).size == Image.open(oracle).size == Image.open(original).size == (256, 256)
    assert 0 < rows["learned"][1] < app.C_MAX and rows["learned"][5] == rows["manual"][5]  # learned C costs no extra render
    gif_image = Image.open(gif)
    assert gif == gif_file and gif_image.n_frames == 2 * 5 - 2 and gif_image.info["loop"] == 0
    assert np.array_equal(state, last)  # edits do not replace the face being edited
    outputs = app.edit("last face", None, False, 0, "a big smile", "", 0.3, False, 0, 256, last)
    assert outputs[3] is None and outputs[6] is None  # nothing asked, nothing made
    with pytest.raises(gr.Error, match="no face yet"):
        app.edit("last face", None, False, 0, "smile", "", 0.3, False, 0, 256, None)


@pytest.mark.parametrize("mode", ["interpolate", "style mix"])
def test_morph_makes_a_bounded_gif(photo, mode):
    gif, gif_file, mixed, _ = app.morph("photo", photo, False, 0, "prompt", None, False, 0, "a famous actor", mode, 8, 4, 90, True,
                                        128, None)
    image = Image.open(gif)
    assert image.n_frames == 6 and image.size == (128, 128) and image.info["duration"] == 90
    assert (mixed is not None) == (mode == "style mix")


def test_a_group_photo_shows_every_face_and_any_can_be_edited(tmp_path):
    from real_photos import group_photo

    path = tmp_path / "group.png"
    group_photo().save(path)
    *_, found, _, _, _, notes, _ = app.invert(uploaded(path), False, 1, 0, 256)
    assert [caption for _, caption in found] == ["face 0", "face 1 (used)"] and "2 faces found" in notes
    assert [Image.open(p).size for p, _ in found] == [(128, 128)] * 2
    original, manual, *_, in_photo, _, _, notes, _ = app.edit("photo", uploaded(path), False, 0, "a big smile", "", 0.3, False, 0,
                                                                256, None)
    assert [caption for _, caption in in_photo] == ["manual C in your photo", "learned C in your photo"]
    assert Image.open(in_photo[0][0]).size == (1300, 700)
    with pytest.raises(gr.Error, match="face 2 asked for, but the photo has 2 face"):
        app.invert(uploaded(path), False, 2, 0, 256)


def test_photo_slots_open_only_uploads(tmp_path):
    """A path named in a request is refused with the same words whether or not the file exists, also inside the
    upload folder: the app's own results there, and names of files that are not there."""
    server_file = Path(app.__file__).resolve().parent / "docs" / "screenshot.png"
    (result, _), *_ = app.random_face(0, 1, 0.7, 256)[0]
    messages = set()
    for payload in ({"path": str(server_file)}, {"path": str(tmp_path / "missing.png")}, str(server_file),
                    {"path": str(Path(app.UPLOADS) / ".." / "etc.png")}, {"path": app.UPLOADS}, {"url": "x"}, 5,
                    {"path": result}, {"path": str(Path(app.UPLOADS) / "0123abcd" / "missing.png")}):
        with pytest.raises(gr.Error) as caught:
            app.invert(payload, True, 0, 0, 256)
        messages.add(caught.value.message)
    assert messages == {app_support.NOT_AN_UPLOAD}
    link = Path(app.UPLOADS) / f"link-{uuid.uuid4().hex}.png"
    link.symlink_to(server_file)  # a link inside the upload folder to a file outside it
    try:
        with pytest.raises(gr.Error, match="did not arrive as an upload"):
            app.invert({"path": str(link)}, True, 0, 0, 256)
    finally:
        link.unlink()


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: app.random_face(-1, 1, 0.7, 256), "seed must be from 0"),
        (lambda: app.random_face(0, 99, 0.7, 256), "number of faces"),
        (lambda: app.random_face(0, 1, float("nan"), 256), "truncation"),
        (lambda: app.random_face(0, 1, 0.7, 300), "size must be one of"),
        (lambda: app.random_face(None, 1, 0.7, 256), "seed is missing"),
        (lambda: app.text_to_face("x", "abc", 0.7, 0, 256), "seed must be a number"),
        (lambda: app.text_to_face(123, 0, 0.7, 0, 256), "the prompt must be text, got int"),
        (lambda: app.invert(None, False, 0, 0, 256), "no photo"),
        (lambda: app.invert(None, False, -1, 0, 256), "face must be from 0 to 63"),
        (lambda: app.edit("photo", None, False, 0, "smile", "", 5.0, False, 0, 256, None), "strength must be"),
        (lambda: app.edit("sideways", None, False, 0, "smile", "", 0.1, False, 0, 256, None), "start from must be one of"),
        (lambda: app.edit("photo", None, False, 0, "smile", "", 0.1, False, 1, 256, None), "frames must be from 2"),
        (lambda: app.morph("photo", None, False, 0, "prompt", None, False, 0, "x", "blend", 8, 4, 90, True, 128, None), "mode"),
        (lambda: app.morph("photo", None, False, 0, "prompt", None, False, 0, "x", "interpolate", 8, 500, 90, True, 128, None), "frames"),
        (lambda: app.morph("photo", None, False, 0, "prompt", None, False, 0, "x", "interpolate", 8, 4, 90, True, 100, None), "GIF size"),
    ],
)
def test_out_of_range_values_are_refused_with_a_reason(call, message):
    with pytest.raises(gr.Error, match=message):
        call()


def test_morph_says_which_photo_has_no_face(photo, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), "gray").save(blank)
    with pytest.raises(gr.Error, match="no face found in the second photo"):
        app.morph("photo", photo, False, 0, "photo", uploaded(blank), False, 0, "", "interpolate", 8, 4, 90, True, 128, None)
    with pytest.raises(gr.Error, match="no face found in the photo"):
        app.morph("photo", uploaded(blank), False, 0, "photo", photo, False, 0, "", "interpolate", 8, 4, 90, True, 128, None)
    gif, *_ = app.morph("photo", photo, False, 0, "photo", uploaded(blank), True, 0, "", "interpolate", 8, 2, 90, False, 128, None)
    assert Image.open(gif).n_frames == 2  # the second photo's own "already aligned" box


def test_every_control_offers_only_what_the_pipeline_accepts():
    limits = app.PIPELINE.limits
    assert limits == app.LIMITS
    sliders = {c.label: c for c in app.demo.blocks.values() if isinstance(c, gr.Slider)}
    psi = [s for label, s in sliders.items() if label.startswith("Truncation")]
    assert psi and all((s.minimum, s.maximum) == (limits.psi.low, limits.psi.high) for s in psi)
    for slider in psi:  # the slider's ends run
        app.PIPELINE.random_faces(0, psi=slider.maximum, size=256)
    radios = [c for c in app.demo.blocks.values() if isinstance(c, gr.Radio) and c.label.startswith(("Output size", "Size"))]
    assert radios and all([value for _, value in r.choices] == list(limits.sizes) for r in radios)


def test_status_names_the_preset_the_limits_and_the_browser_section():
    status = app.status_markdown()
    assert "tiny" in status and "Run it on your own device" in status and "bash dev.sh app" in status
    assert "/gradio_api/file=" not in status and "](web/README.md)" not in status  # no links the app cannot serve
    assert "slow request" in status
    for line in app.PIPELINE.missing():
        assert line in status
    assert "Untrained" in app.banner_markdown()


def test_output_folder_is_bounded_by_size_and_never_rewrites(tmp_path):
    out = app_support.OutputDir(tmp_path, max_bytes=3000)
    paths = [out.write(bytes([i]) * 1000, "x", ".bin") for i in range(6)]
    assert len(set(paths)) == 6
    left = sorted(out.root.iterdir())
    assert sum(p.stat().st_size for p in left) <= 3000 and paths[-1] in left and paths[0] not in left
    assert not [p for p in left if p.name.startswith(".")]  # no temporary files stay behind


def test_real_preset_without_weights_starts_and_says_what_is_missing(tmp_path):
    """`python app.py` with no weights at all: the app builds, and the banner names the command to run."""
    import sys

    env = dict(os.environ, CELEBLOOK_PRESET="ffhq", CELEBLOOK_WEIGHTS=str(tmp_path), HF_HUB_OFFLINE="1")
    code = "import app; print(app.banner_markdown()); print(app.status_markdown())"
    run = procs.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=os.path.dirname(app.__file__))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "`celeblook weights setup --preset ffhq`" in run.stdout


def test_default_preset_without_reachable_weights_starts_on_tiny_and_says_why(tmp_path):
    """`bash dev.sh app` offline with no weights (issue 21): the app runs the tiny preset, answers with a real image,
    and its banner says why, what tiny is, and the one command for the real weights; asking for ffhq stays strict."""
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CELEBLOOK_PRESET"}
    env.update(CELEBLOOK_WEIGHTS=str(tmp_path), HF_HUB_OFFLINE="1")
    code = ("import app; from PIL import Image; gallery, notes, _ = app.random_face(0, 1, 0.7, 256); "
            "print('PRESET', app.PRESET.name, Image.open(gallery[0][0]).size); print(app.banner_markdown()); "
            "print('STATUS', app.status_markdown())")
    run = procs.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                    cwd=os.path.dirname(app.__file__))
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "PRESET tiny (256, 256)" in out
    banner = out[out.index("### "):out.index("STATUS")]
    assert "could not be had" in banner and "offline mode is on (HF_HUB_OFFLINE)" in banner and "random weights" in banner
    assert "`celeblook weights setup --preset ffhq`" in banner and "\\" not in banner
    status = out[out.index("STATUS"):]
    assert "All weights" not in status and "`celeblook weights setup --preset ffhq`" in status


def test_small_face_notice_only_where_the_models_see_the_face_soft(tmp_path):
    """Issue 21: "the face is small ... upscaled 6x" fired on ordinary portraits. The astronaut (43 px between the
    eyes) and Grace Hopper (84 px) get no notice; the astronaut at half size (about 21 px) does."""
    import matplotlib.cbook as cbook
    from real_photos import astronaut

    hopper = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    small = astronaut().resize((256, 256), Image.LANCZOS)
    for name, image in (("astronaut", astronaut()), ("hopper", hopper), ("small", small)):
        image.save(tmp_path / f"{name}.png")
        notes = app.invert(uploaded(tmp_path / f"{name}.png"), False, 0, 0, 256)[7]
        assert ("the face is small" in notes) == (name == "small"), (name, notes)


def test_every_request_control_is_made_from_its_field():
    """One source: each control of a request field has the field's label, help, and its limit's range or options."""
    assert {verb for verb, _ in app.CONTROLS} == {"random_faces", "invert", "text_to_face", "edit", "morph"}
    for (verb, name), control in app.CONTROLS.items():
        f = REQUESTS[verb].params()[name]
        limit = limit_of(f, app.LIMITS)
        assert (control.label, control.info) == (f.metadata["label"], f.metadata["help"]), (verb, name)
        if isinstance(limit, Choice):
            assert [value for _, value in control.choices] == list(limit.options)
        elif (verb, name) == ("random_faces", "seed"):  # every count of faces fits below its maximum
            assert (control.minimum, control.maximum) == (limit.low, limit.high - app.LIMITS.faces.high)
        else:
            assert (control.minimum, control.maximum) == (limit.low, limit.high), (verb, name)


def test_the_edit_tabs_sweep_reuses_the_edits_direction(monkeypatch):
    """One edit with a sweep encodes its prompts once: the sweep takes the edit's direction."""
    _, _, last = app.random_face(2, 1, 0.7, 256)
    embed, calls = app.PIPELINE.engine.embed_tokens, []
    monkeypatch.setattr(app.PIPELINE.engine, "embed_tokens", lambda tokens: calls.append(len(tokens)) or embed(tokens))
    *_, gif, _, notes, _ = app.edit("last face", None, False, 0, "a big smile", "", 0.3, False, 3, 256, last)
    assert gif is not None and calls == [2]  # target and source, once
