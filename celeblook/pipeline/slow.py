"""The slow paths' policy: which requests optimise (the steps asked, or every request when there is no mapper), the
refusal before any work where there are no torch models to differentiate (the runtime install), and the time a
request announces before it starts. The optimisations themselves are celeblook.refine (torch), imported only here
and only when one runs.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from ..engine import Models
from ..errors import WeightsError
from ..install import FULL_INSTALL

Progress = Callable[[float, str], None]
# the slow paths' default steps when no mapper is loaded (public weights only): every feature still answers
TEXT_OPTIMIZE_STEPS = 100
REFINE_STEPS = 100
EDIT_OPTIMIZE_STEPS = 50


class SlowPaths:
    def __init__(self, models: Models):
        self.models = models

    @property
    def refine(self) -> ModuleType:
        """celeblook.refine, imported only where torch is (the runtime install has no torch)."""
        from .. import refine

        return refine

    def steps(self, steps: int, default: int, request: str, slow_path: str, progress: Progress | None) -> int:
        """The optimisation steps a request runs: the asked ones, or ``default`` without a mapper (every request takes
        its slow path then); refused before any work without the torch models, and announced with the time expected."""
        if not self.models.engine.has("mapper"):
            steps = steps or default
            self.need_gradients(f"{request} without a mapper ({self.models.missing[0]})")
        elif steps:
            self.need_gradients(slow_path)
        self.expect(steps, progress)
        return steps

    def need_gradients(self, what: str) -> None:
        """Refuses a slow path before any work when there are no torch models to differentiate (runtime install)."""
        if not self.models.gradients:
            raise WeightsError(f"{what} needs gradients, which the runtime install (ONNX Runtime) has no models for: "
                               f"use {FULL_INSTALL}")

    def calibrate(self) -> float | None:
        """Times an optimisation step on this machine (the unit of every slow path); None without the torch models."""
        return self.refine.calibrate(self.models.generator, self.models.image_encoder) if self.models.gradients else None

    def expect(self, steps: int, progress: Progress | None) -> None:
        """Before a slow path starts: its optimisation steps and, once a step was timed here, the time they take."""
        if not steps or progress is None:
            return
        per_step = self.refine.seconds_per_step(self.models.generator)
        expected = (f"~{self.refine.duration(steps * per_step)} expected ({per_step:.1f} s per step on this machine)"
                    if per_step else "the time per step is measured by the first one")
        progress(0.0, f"slow path: {steps} optimisation steps at 256 px, {expected}")
