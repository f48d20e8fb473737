"""UI-free helpers of the web app: checking values that arrive through the API, prompts, output files
and the status report. Nothing here imports Gradio; the app turns the InputErrors raised here into gr.Error.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import text as text_module
from .errors import InputError

PROMPT_MAX_CHARS = 1000  # a guard: CLIP reads only 77 tokens (~300 characters) and says so; more never reaches it
README_SECTION = "In the browser"


def check_number(name: str, value: object, low: float, high: float, integer: bool = False) -> float | int:
    """``value`` as a number within [low, high]; API clients can send anything, slider bounds are not enforced."""
    if isinstance(value, bool) or value is None:
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    if integer:
        if number != int(number):
            raise InputError(f"{name} must be a whole number, got {value!r}")
        return int(number)
    return number


def check_choice(name: str, value: object, choices: list) -> object:
    """``value`` when it is one of ``choices`` (compared as text, so "512" and 512 both match 512)."""
    for choice in choices:
        if str(value) == str(choice):
            return choice
    raise InputError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def check_prompt(prompt: object, name: str = "prompt") -> tuple[str, list[str]]:
    """A cleaned prompt and notices: empty or whitespace-only prompts are refused, overlong ones cut
    (so a megabyte of text never reaches the tokenizer; CLIP's own 77-token cut is reported by the pipeline)."""
    text = " ".join(text_module.check_prompt(prompt, name).split())
    if len(text) > PROMPT_MAX_CHARS:
        return text[:PROMPT_MAX_CHARS], [f"the {name} was cut to its first {PROMPT_MAX_CHARS} characters"]
    return text, []


class OutputDir:
    """A private temporary folder for the files the app hands out; files older than ``max_age_s`` are pruned
    whenever a new one is made, so a long-running server does not fill its disk."""

    def __init__(self, max_age_s: float = 3600.0):
        self.root = Path(tempfile.mkdtemp(prefix="celeblook-app-"))
        self.max_age_s = max_age_s

    def path(self, stem: str, suffix: str) -> Path:
        self._prune()
        return self.root / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"

    def save_png(self, image: Image.Image, stem: str = "face") -> Path:
        path = self.path(stem, ".png")
        image.save(path)
        return path

    def save_latent(self, wplus: torch.Tensor | np.ndarray, stem: str = "latent") -> Path:
        """W+ as a (23, 512) float32 .npy, loadable with ``numpy.load``."""
        path = self.path(stem, ".npy")
        array = wplus.detach().cpu().numpy() if isinstance(wplus, torch.Tensor) else np.asarray(wplus)
        np.save(path, array.astype(np.float32))
        return path

    def _prune(self) -> None:
        cutoff = time.time() - self.max_age_s
        for old in self.root.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    old.unlink()
            except FileNotFoundError:  # pruned by a concurrent request
                pass


def readme_link() -> str:
    """Where the README's "In the browser" section lives: the Space's README when running on Hugging Face
    Spaces (``SPACE_ID``), ``$CELEBLOOK_README_URL`` when set, else the local README file."""
    anchor = "#" + README_SECTION.lower().replace(" ", "-")
    if os.environ.get("CELEBLOOK_README_URL"):
        return os.environ["CELEBLOOK_README_URL"].split("#")[0] + anchor
    if os.environ.get("SPACE_ID"):
        return f"https://huggingface.co/spaces/{os.environ['SPACE_ID']}/blob/main/README.md{anchor}"
    return f"/gradio_api/file=README.md{anchor}"


def readme_section(readme: Path, title: str = README_SECTION) -> str | None:
    """The text of one ``##`` section of the README (shown in the app's Status tab), or None."""
    if not readme.is_file():
        return None
    lines = readme.read_text(encoding="utf-8").splitlines()
    for start, line in enumerate(lines):
        if line.lstrip("#").strip().lower() == title.lower() and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body = []
            for following in lines[start + 1 :]:
                if following.startswith("#") and len(following) - len(following.lstrip("#")) <= level:
                    break
                body.append(following)
            return "\n".join(body).strip()
    return None
