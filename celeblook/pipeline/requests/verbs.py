"""One request per verb (``Pipeline.random_faces`` takes a ``RandomRequest``, and so on), each field declared once.

Field order is the verb's argument order (``pipe.text_to_face("a face", 3)`` is ``TextRequest("a face", 3)``); the
defaults are the verbs', the page's (site.json) and the command line's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
from PIL import Image

from ...errors import InputError
from ...limits import C_MAX, Limits, bound
from ...text.prompts import DEFAULT_SOURCE, SOURCE_FROM_IMAGE, check_prompt
from ..results import EditResult
from .base import Request, param
from .starts import PhotoStart, Start

STRENGTHS = ("learned", "oracle")  # the strengths that are no number: predicted by the head, searched by the oracle


def _prompt(name: str):
    def check(limits: Limits, value: object) -> tuple[str, list[str]]:
        return check_prompt(value, name)

    return check


def _source(limits: Limits, value: object) -> tuple[str | None, list[str]]:
    """None (or blank): the neutral prompt."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, []
    return check_prompt(value, "source prompt")


def _target_or_none(limits: Limits, value: object) -> tuple[str | None, list[str]]:
    return (None, []) if value is None else check_prompt(value, "target prompt")


def _photo(limits: Limits, value: object) -> tuple[PhotoStart, list[str]]:
    """A photo start; a bare path, image or array is one (loaded, aligned and checked when the verb reads it)."""
    return (value if isinstance(value, PhotoStart) else PhotoStart(value)), []


def check_strength(limits: Limits, strength: object) -> float | str:
    """A number C within the limits, 'learned' or 'oracle'."""
    if isinstance(strength, str) and strength.strip() in STRENGTHS:
        return strength.strip()
    try:
        return limits.strength.check(strength)
    except InputError:
        raise InputError(f"strength must be a number from {bound(limits.strength.low)} to "
                         f"{bound(limits.strength.high)}, 'learned' or 'oracle', got {strength!r}"[:200]) from None


def _strengths(limits: Limits, value: object) -> tuple[tuple[float | str, ...], list[str]]:
    if isinstance(value, (str, int, float)):  # one strength
        value = (value,)
    if not value:
        raise InputError("ask for at least one strength: a number C, 'learned' or 'oracle'")
    return tuple(check_strength(limits, s) for s in value), []


def _iterations(limits: Limits, value: object) -> tuple[int | None, list[str]]:
    """None: the refiner's own count (0 without one)."""
    return (None if value is None else limits.refine_iterations.check(value)), []


def _mode(limits: Limits, value: object) -> tuple[str, list[str]]:
    """"style mix" (as the app shows it) is style_mix."""
    return limits.mode.check(value.strip().replace(" ", "_") if isinstance(value, str) else value), []


SIZE = "output size in px (the generator's early exit below its full size)"
STEPS = "optimisation steps (0: none); each renders and backpropagates through G at 256 px (slow)"


@dataclass(frozen=True)
class RandomRequest(Request):
    """Faces of seeds ``seed`` .. ``seed + count - 1``."""

    verb: ClassVar[str] = "random_faces"
    seed: int = param("the first face's seed (celeblook.seeds: the same face in the app, the CLI and the page)", label="Seed",
                      limit="seed")
    count: int = param("how many faces: seeds seed, seed+1, ...", 1, label="Faces", limit="faces")
    psi: float = param("truncation towards the mean face: lower is more typical, above 1 more varied", 0.7,
                       label="Truncation ψ", limit="psi")
    size: int = param(SIZE, 1024, label="Size (px)", limit="size")

    def _rules(self, limits: Limits) -> Self:
        if self.seed + self.count - 1 > limits.seed.high:
            raise InputError(f"seed must be at most {int(limits.seed.high) - self.count + 1} for {self.count} faces", field="seed")
        return self


@dataclass(frozen=True)
class InvertRequest(Request):
    """A photo -> its face."""

    verb: ClassVar[str] = "invert"
    photo: PhotoStart | str | Path | Image.Image | np.ndarray | None = param(
        "the photo (a PhotoStart, or a path, image or array: its largest face)", label="Your photo", check=_photo)
    refine_steps: int = param("refinement of W+ for identity after the fast pass: " + STEPS, 0,
                              label="Refinement steps (0 = one fast pass; more is slow)", limit="steps")
    size: int = param(SIZE, 1024, label="Output size (px)", limit="size")
    refine_iterations: int | None = param(
        "the learned refiner's iterations w += R(photo, G(w)), each one generator call (default: its own count where "
        "one is installed; 0: the mapper's answer alone)", None, label="Refiner iterations (0 = the mapper alone)",
        limit="refine_iterations", check=_iterations)


@dataclass(frozen=True)
class TextRequest(Request):
    """A prompt -> a face (the mapper's fast path, or CLIP-guided optimisation)."""

    verb: ClassVar[str] = "text_to_face"
    prompt: str = param("what the face should look like", label="Prompt", check=_prompt("prompt"))
    seed: int = param("which of the prompt's faces (a seeded variation of its embedding)", 0, label="Seed", limit="seed")
    psi: float = param("truncation towards the mean face: lower is more typical", 0.7, label="Truncation ψ (lower = more typical)",
                       limit="psi")
    size: int = param(SIZE, 1024, label="Output size (px)", limit="size")
    optimize_steps: int = param("CLIP-guided " + STEPS, 0, label="CLIP optimisation steps (0 = the fast mapper; more is slow)",
                                limit="steps")


@dataclass(frozen=True)
class EditRequest(Request):
    """One edit of a face per asked strength."""

    verb: ClassVar[str] = "edit"
    start: Start = param("the face to edit: a PhotoStart, a PromptStart, a Face or a W+ latent", label="Start from")
    target: str = param('what the edit moves towards, e.g. "a face with glasses"', label="Target prompt",
                        check=_prompt("target prompt"))
    source: str | None = param(f'what it moves away from (default "{DEFAULT_SOURCE}"); "{SOURCE_FROM_IMAGE}": the face itself',
                               None, label="Source prompt (optional)", check=_source)
    strengths: tuple[float | str, ...] = param("one or more of: a number C, 'learned' (the strength head), 'oracle' (searched)",
                                               ("learned",), label="Strengths", check=_strengths, flag="--strength")
    size: int = param(SIZE, 1024, label="Output size (px)", limit="size")
    optimize_steps: int = param("without a mapper, each manual C is a CLIP-guided optimisation of this many steps (0: "
                                "the default)", 0, label="Optimisation steps without a mapper", limit="steps")


@dataclass(frozen=True)
class SweepRequest(Request):
    """Frames of an edit at C = 0 .. c_max; of an ``EditResult``, its face and direction (nothing encoded again)."""

    verb: ClassVar[str] = "sweep"
    start: Start | EditResult = param("an EditResult (its direction reused), or a face to edit as EditRequest's start",
                                      label="Start from")
    target: str | None = param("the target prompt (not with an EditResult)", None, label="Target prompt", check=_target_or_none)
    source: str | None = param(f'the source prompt (default "{DEFAULT_SOURCE}")', None, label="Source prompt (optional)",
                               check=_source)
    c_max: float = param("the last frame's strength C", C_MAX, label="Sweep C max", limit="c_max")
    n_frames: int = param("frames of the sweep", 16, label="Frames", limit="frames", flag="--frames")
    size: int = param(SIZE, 512, label="Frame size (px)", limit="size")

    def _rules(self, limits: Limits) -> Self:
        if isinstance(self.start, EditResult):
            if self.target is not None or self.source is not None:
                raise InputError("a sweep of an edit takes its prompts from the edit: give no target or source", field="target")
        elif self.target is None:
            raise InputError("the target prompt is missing: a sweep of a face needs one", field="target")
        return self


@dataclass(frozen=True)
class MorphRequest(Request):
    """Frames between two faces: interpolated on every slot, or style-mixed from a crossover slot on."""

    verb: ClassVar[str] = "morph"
    a: Start = param("the first face: a PhotoStart, a PromptStart, a Face or a W+ latent", label="First face from")
    b: Start = param("the second face, as a", label="Second face from")
    n_frames: int = param("frames from a to b", 16, label="Frames", limit="frames", flag="--frames")
    size: int = param(SIZE, 512, label="Frame size (px)", limit="size")
    mode: str = param("interpolate: every slot moves from a to b; style mix: from the crossover slot on, so coarse slots "
                      "(pose, shape) stay a's and fine slots (colour, texture) become b's", "interpolate", label="Mode",
                      limit="mode", check=_mode)
    crossover: int = param("style_mix: the first W+ slot taken from b", 8, label="Style-mix crossover slot", limit="crossover")

    def _unused(self, checked: dict[str, object]) -> dict[str, object]:
        return {"crossover": 0} if checked.get("mode") == "interpolate" else {}  # every slot moves: no crossover


REQUESTS: dict[str, type[Request]] = {r.verb: r for r in (RandomRequest, InvertRequest, TextRequest, EditRequest, SweepRequest,
                                                          MorphRequest)}
