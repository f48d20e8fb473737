"""Bounded, looping GIFs (celeblook.media) and the app's UI-free input checks (celeblook.app_support)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from celeblook.errors import InputError
from celeblook.limits import MAX_GIF_FRAMES
from celeblook.media import encode_gif, loop_frames, save_gif


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
