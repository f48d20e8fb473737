"""Every limit a request is checked against, defined once.

The pipeline checks its inputs here; the app's sliders and the CLI's argparse read their ranges from the
same objects, so a control never offers a value the pipeline refuses. Checks take what an API client can
send (numbers, numeric strings such as "512", None, NaN, text) and answer with one line naming the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InputError

C_MAX = 0.8  # the write-up swept C over [0, 0.8]: the manual slider's span, the sweep's end and the predictor's range
TARGET_SIMILARITY = 0.7  # CLIP similarity of a face and its edit that learned and oracle C aim for (write-up)
MORPH_MODES = ("interpolate", "style_mix")
MAX_GIF_FRAMES = 96  # frames in one GIF or video clip after ping-pong (which doubles them, less the two ends)
CLIP_FORMATS = ("gif", "mp4", "webm")  # what a sweep or morph is saved as (celeblook.clips; the page's src/clips.js)
# the app's server: requests that may wait for their lane (one quick and one slow request run at a time; more
# are refused at once), sessions whose state it keeps (the least recently used go first) and how long it keeps it
QUEUE_SIZE = 32
SESSIONS = 500  # ~250 KB each: Gradio's per-session copy of the page's component settings and the last face's W+
SESSION_TTL_S = 3600


def bound(x: float) -> str:
    """A bound for messages: whole numbers in full (a seed's 2147483647, not 2.14748e+09), others as :g."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def shown(value: object) -> str:
    """A short repr of what a client sent, for messages (never a megabyte of it)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Range:
    """A number in [low, high]; ``integer``: a whole number."""

    name: str
    low: float
    high: float
    integer: bool = False

    def check(self, value: object) -> float | int:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InputError(f"{self.name} is missing: give a number from {bound(self.low)} to {bound(self.high)}")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InputError(f"{self.name} must be a number, got {shown(value)}")
        try:
            number = float(value)
        except ValueError:
            raise InputError(f"{self.name} must be a number, got {shown(value)}") from None
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise InputError(f"{self.name} must be from {bound(self.low)} to {bound(self.high)}, got {shown(value)}")
        if self.integer:
            if number != int(number):
                raise InputError(f"{self.name} must be a whole number, got {shown(value)}")
            return int(number)
        return number


@dataclass(frozen=True)
class Choice:
    """One of ``options``, compared as text so that "512" and 512 both pick 512."""

    name: str
    options: tuple

    def check(self, value: object) -> object:
        if value is None:
            raise InputError(f"{self.name} is missing: choose one of {', '.join(map(str, self.options))}")
        for option in self.options:
            if str(value).strip() == str(option):
                return option
        raise InputError(f"{self.name} must be one of {', '.join(map(str, self.options))}, got {shown(value)}")


def check_flag(name: str, value: object) -> bool:
    """A checkbox: True/False (also 0/1 and "true"/"false" from API clients)."""
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise InputError(f"{name} must be true or false, got {shown(value)}")


FACE_INDEX = Range("face", 0, 63, integer=True)  # which detected face of a photo (0 = the largest)
CLIP_FORMAT = Choice("format", CLIP_FORMATS)


@dataclass(frozen=True)
class Limits:
    """What a request may ask of one generator: sizes and slots come from its config, the rest is fixed."""

    sizes: tuple[int, ...]  # output sizes offered (the generator renders smaller ones too, as early exits)
    n_slots: int  # W+ slots
    seed: Range = Range("seed", 0, 2**31 - 1, integer=True)  # int32: what Gradio and JavaScript carry exactly
    faces: Range = Range("number of faces", 1, 8, integer=True)
    psi: Range = Range("truncation psi", 0.0, 1.2)  # above 1 is extrapolation: more varied, less typical faces
    strength: Range = Range("strength C", -2.0, 2.0)  # negative C moves away from the target
    c_max: Range = Range("sweep C max", 0.05, 2.0)
    steps: Range = Range("steps", 0, 500, integer=True)  # refinement / CLIP-guided optimisation
    refine_iterations: Range = Range("refine iterations", 0, 8, integer=True)  # the learned refiner's (0: none)
    frames: Range = Range("frames", 2, MAX_GIF_FRAMES // 2, integer=True)  # ping-pong doubles them
    frame_ms: Range = Range("frame duration (ms)", 20, 1000, integer=True)  # browsers play < 20 ms at 100 ms
    gif_size: Choice = Choice("GIF size", (128, 256, 512))  # a video clip's sizes too: the same frames, compared
    clip_format: Choice = CLIP_FORMAT
    mode: Choice = Choice("mode", MORPH_MODES)  # a morph's
    face_index: Range = FACE_INDEX

    @classmethod
    def of(cls, generator_config) -> Limits:
        """For a ``GeneratorConfig``: the product offers 256 px and up (smaller exits are too coarse for faces)."""
        return cls(sizes=tuple(s for s in generator_config.sizes if s >= 256), n_slots=generator_config.n_slots)

    @property
    def size(self) -> Choice:
        return Choice("size", self.sizes)

    @property
    def crossover(self) -> Range:
        """Style mixing: the first W+ slot taken from the second face."""
        return Range("crossover slot", 1, self.n_slots - 1, integer=True)

    def sweep_frames(self, value: object) -> int:
        """0 (no sweep) or a frame count."""
        frames = Range("sweep frames", 0, self.frames.high, integer=True).check(value)
        return 0 if frames == 0 else self.frames.check(frames)
