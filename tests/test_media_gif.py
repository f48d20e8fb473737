"""Bounded, looping GIFs (celeblook.media) and the app's UI-free input checks (celeblook.app_support)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from celeblook import app_support as support
from celeblook.errors import InputError
from celeblook.media import MAX_GIF_FRAMES, encode_gif, loop_frames, save_gif


def frames(n: int, side: int = 96, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)) for _ in range(n)]


def test_gif_loops_with_every_frame_and_duration(tmp_path):
    made = save_gif(frames(5), tmp_path / "a.gif", duration_ms=70)
    gif = Image.open(made.path)
    assert gif.n_frames == 5 and gif.info["loop"] == 0 and gif.info["duration"] == 70 and gif.size == (96, 96)
    assert (made.path, made.side, made.frames, made.notices) == (tmp_path / "a.gif", 96, 5, [])


def test_gif_frames_keep_their_colours():
    # smooth gradients that change over time: one shared palette must still fit every frame
    ramp = np.linspace(0, 255, 128)
    sources = [np.stack([ramp[None, :] * np.ones((128, 1)), ramp[:, None] * np.ones((1, 128)),
                         np.full((128, 128), 40.0 * i)], -1).astype(np.uint8) for i in range(6)]
    gif = Image.open(io.BytesIO(encode_gif(sources).data))
    for i, source in enumerate(sources):
        gif.seek(i)
        decoded = np.asarray(gif.convert("RGB"), dtype=np.float64)
        assert np.abs(decoded - source).mean() < 6, f"frame {i} lost its colours"


def test_ping_pong_plays_back_without_repeating_the_ends():
    a, b, c, d = frames(4)
    assert loop_frames([a, b, c, d], ping_pong=True) == [a, b, c, d, c, b]
    assert Image.open(io.BytesIO(encode_gif([a, b, c, d], ping_pong=True).data)).n_frames == 6


def test_gif_size_is_bounded():
    big = frames(3, side=600)
    assert Image.open(io.BytesIO(encode_gif(big).data)).size == (512, 512)  # MAX_GIF_SIDE
    assert Image.open(io.BytesIO(encode_gif(big, size=128).data)).size == (128, 128)
    # noise compresses badly: an 80 KB budget forces smaller frames, never a bigger file
    data = encode_gif(frames(6, side=200), max_bytes=80_000).data
    assert len(data) <= 80_000 and 64 <= Image.open(io.BytesIO(data)).size[0] < 200
    with pytest.raises(InputError, match="does not fit"):
        encode_gif(frames(20, side=96), max_bytes=5_000)


def test_a_gif_smaller_than_asked_says_so_and_keeps_every_frame(tmp_path):
    made = save_gif(frames(4, side=200), tmp_path / "noise.gif", ping_pong=True, size=200, max_bytes=100 * 1024)
    gif = Image.open(made.path)
    assert made.path.stat().st_size <= 100 * 1024 and gif.size == (made.side, made.side) and 64 <= made.side < 200
    assert made.frames == gif.n_frames == 6  # shrunk, not thinned
    assert made.notices == [f"the GIF is {made.side} px instead of 200 px so that its 6 frames stay under 100 KB: "
                            "fewer frames make a bigger GIF"]
    assert encode_gif(frames(2, side=96), size=512).notices == ["the GIF is 96 px: its frames are only 96x96 px"]
    assert encode_gif(frames(2, side=600), size=1024).notices == ["the GIF is 512 px: GIFs are at most 512 px"]
    assert encode_gif(frames(2, side=96)).notices == []  # no size asked: the frames' own, silently


def test_save_gif_never_rewrites_a_file_being_read(tmp_path):
    path = tmp_path / "served.gif"
    first = save_gif(frames(3, seed=1), path).path.read_bytes()
    with open(path, "rb") as download:  # a download of the old file is under way
        save_gif(frames(4, seed=2), path)
        assert download.read() == first  # it still gets the whole old file, not a mix
    assert Image.open(path).n_frames == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served.gif"]  # no temporary file left behind
    with pytest.raises(InputError):
        save_gif([], tmp_path / "never.gif")
    assert not (tmp_path / "never.gif").exists()


def test_gif_refuses_bad_requests():
    with pytest.raises(InputError, match="at most"):
        encode_gif(frames(MAX_GIF_FRAMES // 2 + 2, side=8), ping_pong=True)
    with pytest.raises(InputError, match="at least one frame"):
        encode_gif([])
    with pytest.raises(InputError, match="duration"):
        encode_gif(frames(2), duration_ms=5)


def test_numbers_from_the_api_are_checked():
    assert support.check_number("seed", "12", 0, 100, integer=True) == 12
    assert support.check_number("psi", 0.5, 0, 1) == 0.5
    for bad, message in [("abc", "must be a number"), (None, "must be a number"), (True, "must be a number"),
                         (float("nan"), "between"), (1e9, "between"), (-1, "between"), (2.5, "whole number")]:
        with pytest.raises(InputError, match=message):
            support.check_number("seed", bad, 0, 100, integer=True)
    assert support.check_choice("size", "512", [256, 512]) == 512
    with pytest.raises(InputError, match="one of 256, 512"):
        support.check_choice("size", 300, [256, 512])


def test_prompts_are_checked_and_cut_with_a_notice():
    assert support.check_prompt("  a   smiling\nface ") == ("a smiling face", [])
    for bad in ("", "   \n\t", None, 42):
        with pytest.raises(InputError, match="empty"):
            support.check_prompt(bad)
    text, notices = support.check_prompt("word " * 400)
    assert len(text) == support.PROMPT_MAX_CHARS and "cut" in notices[0]


def test_output_files_and_readme_section(tmp_path, monkeypatch):
    out = support.OutputDir()
    latent = np.random.default_rng(0).standard_normal((23, 512)).astype(np.float32)
    np.testing.assert_array_equal(np.load(out.save_latent(latent)), latent)
    assert Image.open(out.save_png(Image.new("RGB", (20, 20)))).size == (20, 20)

    readme = tmp_path / "README.md"
    readme.write_text("# T\n## Install\nx\n## In the browser\nOpen `web/`.\n### Details\nmore\n## Next\ny\n")
    assert support.readme_section(readme) == "Open `web/`.\n### Details\nmore"
    monkeypatch.setenv("SPACE_ID", "someone/celeblook")
    assert support.readme_link() == "https://huggingface.co/spaces/someone/celeblook/blob/main/README.md#in-the-browser"
