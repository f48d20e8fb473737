"""The pipeline's components and the parts every verb shares (diffusers' pipeline base, in small)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
from PIL import Image

from ..engine import Models, truncate
from ..errors import InputError
from ..limits import Limits
from ..media import to_uint8
from ..preprocess import photo_to_pixels
from ..presets import Preset
from ..remedy import Missing, remedy
from ..seeds import seeded_normal
from .load import Name, load_pretrained
from .requests import check_wplus
from .results import Face, Result
from .slow import SlowPaths


class PipelineBase:
    """The components (the models and their engine, the limits, the slow paths) and what every verb uses:
    seeded and mean latents, rendering, results. ``Pipeline`` adds the verbs."""

    def __init__(self, models: Models):
        self.models = models
        self.preset: Preset = models.preset
        self.engine = models.engine
        # the torch models, for the slow paths' gradients (None in the runtime install)
        self.generator = models.generator
        self.text_encoder = models.text_encoder
        self.image_encoder = models.image_encoder  # the E_I the mapper reads (student or teacher tower)
        self.mapper = models.mapper
        self.strength = models.strength
        self.limits = Limits.of(self.preset.generator)
        self.notices = list(models.notices)  # standing notes about the loaded models, repeated in every Result
        self.slow = SlowPaths(models)

    @classmethod
    def from_pretrained(cls, name: Name = None) -> Self:
        """The pipeline of ``name``: "ffhq" | "tiny" (a preset with the heads installed for it; None:
        ``$CELEBLOOK_PRESET``, else ffhq), a folder (heads as ``train all --out`` leaves them, or an ONNX export) or
        "hf-hub:OWNER/NAME" (a published heads repository: downloaded, verified, installed); see ``load.pretrained``.
        Loads what exists; missing heads are reported by ``missing()``, not raised. Without torch (the runtime
        install) the ONNX export serves every fast path. ``Pipeline(load_models(preset, heads_folder))`` builds one from
        parts."""
        return cls(load_pretrained(name))

    def missing(self) -> list[Missing]:
        return list(self.models.missing)

    @property
    def has_mapper(self) -> bool:
        return self.engine.has("mapper")

    def calibrate(self) -> float | None:
        """Times an optimisation step on this machine, so that slow requests say how long they will take before they
        start; None without the torch models. The app runs it at start, in the background, when its requests would
        take a slow path."""
        return self.slow.calibrate()

    def _seeded_wplus(self, seed: int, psi: float) -> np.ndarray:
        """The seed's face: z from celeblook.seeds, w = mapping(z) truncated by psi, on every slot."""
        w = truncate(self.engine.mapping(seeded_normal(seed, self.preset.generator.style_dim)[None]), self.engine.w_avg, psi)
        return np.repeat(w[:, None, :], self.limits.n_slots, axis=1)

    def _mean_wplus(self) -> np.ndarray:
        return np.repeat(self.engine.w_avg[:, None, :], self.limits.n_slots, axis=1).astype(np.float32)

    def _face(self, wplus: np.ndarray, size: int, **scores: float) -> tuple[Face, np.ndarray]:
        """The face and its pixels (N,3,size,size), which scoring reads instead of rendering again."""
        pixels = self._render(wplus, size)
        face = Face(Image.fromarray(to_uint8(pixels)[0]), np.array(wplus[0], np.float32), dict(scores))
        return face, pixels

    def _render(self, wplus: np.ndarray, size: int) -> np.ndarray:
        return self.engine.synthesize(np.asarray(wplus, np.float32), size)

    def _result(self, faces: list[Face], notices: Sequence[str] = (), **photo) -> Result:
        return Result(faces, self.notices + list(notices), **photo)

    def _wplus(self, wplus: object) -> np.ndarray:
        return check_wplus(self.limits, self.preset.generator.style_dim, wplus)

    def _refine_iterations(self, count: int | None) -> int:
        """The refiner's iterations of a (checked) request: None: its default (0 without a refiner)."""
        if count is None:
            return self.engine.refiner_iterations if self.engine.has("refiner") else 0
        if count and not self.engine.has("refiner"):
            raise InputError(f"refine_iterations {count} needs a trained refiner; run `{remedy('refiner', self.preset.name)}`",
                             field="refine_iterations")
        return count

    def _refined(self, image: Image.Image, wplus: np.ndarray, iterations: int) -> np.ndarray:
        """w_{t+1} = w_t + R(x, G(w_t)), ``iterations`` times (celeblook.models.refiner), on the engine."""
        size = self.engine.refiner_size
        photo = photo_to_pixels(image, size)
        for _ in range(iterations):
            wplus = (wplus + self.engine.refine(photo, self.engine.synthesize(wplus, size))).astype(np.float32)
        return wplus
