"""Sweeps and morphs as clips (celeblook.clips): MP4 (H.264) and WebM (VP9) that decode back to every frame, the
GIF unchanged, the bounds shared with the GIF, and one line naming the extra where PyAV is missing; the CLI's
``--format``."""

from __future__ import annotations

import io
import json
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image

from celeblook.clips import VIDEO_EXTRA, MissingVideoError, check_format, encode_clip, save_clip
from celeblook.errors import InputError
from celeblook.media import encode_gif


def frames(n: int, side: int = 96, seed: int = 0) -> list[np.ndarray]:
    """Smooth moving gradients (a video codec's kind of picture), distinct per frame."""
    ramp = np.linspace(0, 255, side)
    return [np.stack([np.roll(ramp, 7 * i)[None, :] * np.ones((side, 1)), ramp[:, None] * np.ones((1, side)),
                      np.full((side, side), 30.0 * i % 256)], -1).astype(np.uint8) for i in range(n)]


def decoded(data: bytes) -> tuple[str, list[np.ndarray], float]:
    """(codec, every frame as RGB, seconds per frame) of a video file, decoded by FFmpeg through PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        images = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return stream.codec_context.name, images, float(1 / stream.average_rate)


@pytest.mark.parametrize(("format", "codec", "mime"), [("mp4", "h264", "video/mp4"), ("webm", "vp9", "video/webm")])
def test_a_video_decodes_back_to_every_frame_of_the_loop(tmp_path, format, codec, mime):
    sources = frames(5)
    made = save_clip(sources, tmp_path / "morph", format, duration_ms=70, ping_pong=True)
    assert made.path == tmp_path / f"morph.{format}" and made.path.read_bytes() == made.data
    assert (made.format, made.mime, made.side, made.frames, made.notices) == (format, mime, 96, 8, [])
    name, images, seconds = decoded(made.data)
    assert name == codec and len(images) == 8 and seconds == pytest.approx(0.070)
    # ping-pong as the GIF plays it: 0 1 2 3 4 3 2 1, each frame close to its source (lossy, 4:2:0)
    for image, source in zip(images, [sources[i] for i in (0, 1, 2, 3, 4, 3, 2, 1)]):
        assert image.shape == (96, 96, 3) and np.abs(image.astype(float) - source).mean() < 6


def test_a_gif_clip_is_the_gif(tmp_path):
    made = encode_clip(frames(4), "gif", duration_ms=90, ping_pong=True, size=64)
    assert made.data == encode_gif(frames(4), 90, True, 64).data and (made.mime, made.frames, made.side) == ("image/gif", 6, 64)


def test_videos_keep_the_gif_bounds_and_even_sides():
    odd = encode_clip([Image.fromarray(f).resize((97, 97)) for f in frames(3, 97)], "mp4")
    assert decoded(odd.data)[1][0].shape == (96, 96, 3)  # 4:2:0 needs even sides
    assert decoded(encode_clip(frames(2, 600), "webm").data)[1][0].shape == (512, 512, 3)  # MAX_GIF_SIDE
    made = encode_clip(frames(2, 200), "mp4", size=128)
    assert decoded(made.data)[1][0].shape == (128, 128, 3)
    with pytest.raises(InputError, match="MP4 may have at most 96 frames"):
        encode_clip(frames(50, 8), "mp4", ping_pong=True)
    with pytest.raises(InputError, match="frame duration"):
        encode_clip(frames(2), "webm", duration_ms=5)
    with pytest.raises(InputError, match="over 1 KB: use fewer frames"):
        encode_clip(frames(4), "mp4", max_bytes=1024)
    with pytest.raises(InputError, match="format must be one of gif, mp4, webm, got 'avi'"):
        encode_clip(frames(2), "avi")


def test_without_pyav_a_video_names_the_extra_and_a_gif_still_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails, as in an install without the extra
    with pytest.raises(MissingVideoError) as caught:
        check_format("mp4")
    assert str(caught.value) == VIDEO_EXTRA and 'pip install "celeblook[video]"' in VIDEO_EXTRA
    assert encode_clip(frames(2), "gif").mime == "image/gif"


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    from celeblook.factory import create_generator

    folder = tmp_path_factory.mktemp("latents")
    generator = create_generator("tiny")
    with torch.no_grad():
        for seed in (1, 2):
            np.save(folder / f"w{seed}.npy", generator.z_to_wplus(generator.seeded_z(seed), 0.7)[0].numpy())
    (folder / "weights").mkdir()
    return folder


def test_cli_morph_writes_the_format_asked(latents, tmp_path, monkeypatch, capsys):
    from celeblook.cli import main

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(latents / "weights"))
    for format in ("mp4", "webm"):
        out = tmp_path / format
        assert main(["morph", str(latents / "w1.npy"), str(latents / "w2.npy"), "--frames", "3", "--format", format,
                     "--preset", "tiny", "--size", "256", "--out", str(out)]) == 0
        printed = [json.loads(line)["file"] for line in capsys.readouterr().out.splitlines()]
        assert printed[-1] == str(out / f"morph.{format}")
        _, images, _ = decoded((out / f"morph.{format}").read_bytes())
        assert len(images) == 4 and images[0].shape == (256, 256, 3)  # 3 frames, ping-pong: 0 1 2 1


def test_cli_refuses_a_video_format_before_any_work(latents, tmp_path, monkeypatch, capsys):
    from celeblook.cli import main

    args = ["morph", str(latents / "w1.npy"), str(latents / "w2.npy"), "--preset", "tiny", "--size", "256", "--out", str(tmp_path / "o")]
    assert main([*args, "--gif", "--format", "webm"]) == 2
    assert capsys.readouterr().err == "error: --gif writes a GIF: for a video give --format webm alone\n"
    monkeypatch.setitem(sys.modules, "av", None)
    assert main([*args, "--format", "mp4"]) == 2
    assert capsys.readouterr().err == f"error: {VIDEO_EXTRA}\n" and not (tmp_path / "o").exists()
