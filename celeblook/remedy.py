"""What is missing, and the one command that gets or makes it: written here once, read by every message, the app's
Status tab and banner, the CLI and the weights manifest.

Commands are shown as the console command ``celeblook`` (``python -m celeblook`` is the same program; in a checkout,
``bash dev.sh celeblook ...``).
"""

from __future__ import annotations

from dataclasses import dataclass

PROGRAM = "celeblook"
TRAINED = {"mapper": ("mapper", "weights/{preset}"), "strength": ("strength", "weights/{preset}"),
           "student": ("encoder", "weights"), "refiner": ("refiner", "weights/{preset}"), "heads": ("all", "weights/{preset}")}


def command(*words: object) -> str:
    """A command line of this program as people type it."""
    return " ".join([PROGRAM, *map(str, words)])


def remedy(part: str, preset: str) -> str:
    """The command that gets or makes ``part`` for ``preset``: "weights" (the preset's public weights: generator,
    CLIP, the student's initialisation), a trained head ("mapper", "strength", "student", or all "heads"), or
    "export" (the ONNX export a runtime install serves)."""
    if part == "weights":
        return command("weights", "setup", "--preset", preset)
    if part in TRAINED:
        job, out = TRAINED[part]
        return command("train", job, "--preset", preset, "--out", out.format(preset=preset))
    if part == "export":
        return command("export", "onnx", "--preset", preset, "--heads", f"weights/{preset}")
    raise ValueError(f"no remedy for {part!r}")


@dataclass(frozen=True)
class Missing:
    """A part the loaded models lack (or whose file is there but unusable), where it was looked for, and the command
    that gets or makes it."""

    part: str  # "mapper" | "strength" | "student" | "export" | a public weight's role
    path: str
    command: str
    problem: str = "missing"  # or why the file there cannot be used

    def __str__(self) -> str:
        where = self.path if self.problem == "missing" else f"{self.path}: {self.problem}"
        return f"{self.part} {'missing' if self.problem == 'missing' else 'unusable'} ({where}): run `{self.command}`"
