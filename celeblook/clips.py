"""Sweeps and morphs as clips: a looping GIF (celeblook.media) or a video, MP4 (H.264) or WebM (VP9).

Videos go through PyAV (the ``video`` extra: its wheels bundle FFmpeg with libx264 and libvpx), imported only
when a video is made, so an install without it still makes GIFs and names the extra to install for the rest.
A video keeps the GIF's bounds (frames, side, frame time, bytes) so that both formats of one request hold the
same frames; players loop a video themselves (the app's and the page's <video loop>), so ping-pong is in the
frames, as in the GIF.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import CelebError, InputError
from .files import atomic_write_bytes
from .limits import CLIP_FORMAT
from .media import MAX_GIF_BYTES, checked_frames, encode_gif, scaled

MIME = {"gif": "image/gif", "mp4": "video/mp4", "webm": "video/webm"}
# (FFmpeg encoder, its options): constant quality (CRF) rather than a bitrate, so a still face costs few bytes and
# a busy morph keeps its detail; the levels are each encoder's defaults for "looks like the source"
VIDEO_CODECS = {
    "mp4": ("libx264", {"crf": "23", "preset": "medium", "movflags": "+faststart"}),  # faststart: plays while loading
    "webm": ("libvpx-vp9", {"crf": "32", "b": "0", "deadline": "good", "cpu-used": "4"}),  # b=0: constant quality
}
VIDEO_EXTRA = 'MP4 and WebM clips need PyAV: pip install "celeblook[video]" (GIFs work without it)'


class MissingVideoError(CelebError):
    """PyAV is not installed: video clips cannot be made (GIFs can)."""


@dataclass(frozen=True)
class EncodedClip:
    """A clip as made: its bytes, format and MIME type, side, frames per loop and what differs from the request
    (``notices``); ``path``: where ``save_clip`` wrote it."""

    data: bytes
    format: str
    mime: str
    side: int
    frames: int
    notices: list[str]
    path: Path | None = None

    @property
    def suffix(self) -> str:
        return f".{self.format}"


def check_format(value: object) -> str:
    """The clip format asked for (gif | mp4 | webm), refused at once when this install cannot make it."""
    chosen = CLIP_FORMAT.check(value)
    if chosen != "gif":
        _av()
    return chosen


def _av():
    try:
        import av
    except ImportError:
        raise MissingVideoError(VIDEO_EXTRA) from None
    return av


def encode_clip(
    frames: Sequence[Image.Image | np.ndarray],
    format: str = "gif",
    duration_ms: int = 80,
    ping_pong: bool = False,
    size: int | None = None,
    max_bytes: int = MAX_GIF_BYTES,
) -> EncodedClip:
    """The frames as a clip of ``format``; a GIF as ``media.encode_gif`` makes it, a video with the same bounds."""
    format = check_format(format)
    if format == "gif":
        gif = encode_gif(frames, duration_ms, ping_pong, size, max_bytes)
        return EncodedClip(gif.data, format, MIME[format], gif.side, gif.frames, gif.notices)
    what = format.upper() if format == "mp4" else "WebM"
    images, side, notices = checked_frames(frames, duration_ms, ping_pong, size, what)
    data = _encode_video(scaled(images, side, even=True), format, duration_ms)
    if len(data) > max_bytes:  # constant quality has no size cap: never a bigger file than the GIF's budget
        raise InputError(f"the {what} is {len(data) // 1024} KB, over {max_bytes // 1024} KB: use fewer frames or a smaller size")
    return EncodedClip(data, format, MIME[format], side, len(images), notices)


def _encode_video(images: list[Image.Image], format: str, duration_ms: int) -> bytes:
    av = _av()
    codec, options = VIDEO_CODECS[format]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=format) as container:
        stream = container.add_stream(codec, rate=Fraction(1000, duration_ms))  # each frame shown duration_ms
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"  # what every browser's decoder takes
        stream.options = dict(options)
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())  # flush the frames the encoder holds back
    return buffer.getvalue()


def save_clip(
    frames: Sequence[Image.Image | np.ndarray],
    path: str | Path,
    format: str = "gif",
    duration_ms: int = 80,
    ping_pong: bool = False,
    size: int | None = None,
) -> EncodedClip:
    """Write the clip (see ``encode_clip``) under a temporary name, then rename it to ``path`` (its suffix
    replaced by the format's): a reader never sees half a file."""
    clip = encode_clip(frames, format, duration_ms, ping_pong, size)
    path = Path(path).with_suffix(clip.suffix)
    atomic_write_bytes(path, clip.data)
    return replace(clip, path=path)
