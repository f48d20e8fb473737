"""Pipeline: the one door through which the app, the CLI and the API reach the models.

    photo --load--> --align--> crop --E_I--> e --f--> W+ [--refine--> W+'] --G--> face        invert
    prompt --E_T--> e_T --f--> W+ (or CLIP-guided optimisation) --G--> face                    text_to_face
    W+ + C * (f(e_T(target)) - f(e_T(source))) --G--> face, for each asked C                   edit / sweep
    interpolation or per-slot style mixing of two W+ --G--> frames                             morph

Every request's inputs are checked here, against ``self.limits``, and may arrive as an API client sends
them (numbers as strings, None, NaN): a bad value raises InputError with one line naming it. Edits and
morphs start from anything a person has: a photo (``PhotoStart``), a prompt (``PromptStart``), a face made
earlier (``Face``) or a W+ latent.

Methods return a ``Result`` (faces, each with its image, the W+ rendered and its scores, plus notices for
the user) or, for edits, an ``EditResult`` with one ``Variant`` per asked strength. Scores are cosines of
E_I embeddings (clip_similarity: to the input face; text_score: to the prompt's E_T embedding) and the
number of generator calls spent. Randomness comes only from seeds (celeblook.seeds, the stream the browser
page shares), so a seed fully determines its result.

Every forward runs on ``models.engine`` (the torch models, or their ONNX exports), numpy in and out, so the
full install and the torch-free runtime answer with the same code. The slow paths (refinement, CLIP-guided
optimisation) need gradients: they run on the torch models (celeblook.refine) and say so where there are none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from .align import AlignedFace, align_face, render_quad
from .engine import Models, cosine, truncate
from .errors import InputError, WeightsError
from .identity import IdentityDistance, face_descriptor, identity_distance
from .install import FULL_INSTALL, torch_installed
from .limits import C_MAX, FACE_INDEX, TARGET_SIMILARITY, Limits, check_flag
from .media import to_uint8
from .paste import paste_back
from .photo import load_photo
from .presets import Preset, get_preset
from .runtime.load import load_runtime_models
from .runtime.ort import BACKEND_ENV, backend_name
from .seeds import seeded_normal
from .strength_oracle import oracle_strength
from .text.prompts import DEFAULT_SOURCE, SOURCE_FROM_IMAGE, check_prompt, edit_direction, embed_prompts, vary_embedding

Progress = Callable[[float, str], None]
TEXT_VARIATION = 0.5  # seeded spread of a prompt's embedding, in units of the centre set's RMS spread
# the slow paths' default steps when no mapper is loaded (public weights only): every feature still answers
TEXT_OPTIMIZE_STEPS = 100
REFINE_STEPS = 100
EDIT_OPTIMIZE_STEPS = 50
MORPH_MODES = ("interpolate", "style_mix")
SCORE_SIZE = 256  # edits are scored against the unedited face rendered at this size, and the oracle probes at it


@dataclass
class Face:
    image: Image.Image
    wplus: np.ndarray  # (23,512) float32
    scores: dict[str, float] = field(default_factory=dict)
    identity: IdentityDistance | None = None  # vs the person in the photo (or the unedited face), when measured
    pasted: Image.Image | None = None  # the face blended back into the photo it came from (photo inputs)


@dataclass
class AlignedPhoto:
    """A photo as loaded (upright RGB, at most photo.MAX_SIDE) and the FFHQ crop of its chosen face."""

    photo: Image.Image
    aligned: AlignedFace
    notices: list[str]
    full_size: tuple[int, int] | None = None  # the photo's size upright before downscaling (photo.Photo.full_size)

    @cached_property
    def descriptor(self) -> np.ndarray | None:
        """The chosen person's face descriptor (celeblook.identity), computed once for every result compared to it."""
        return face_descriptor(self.aligned.image)

    def thumbnails(self, size: int = 128) -> list[Image.Image]:
        """Every face found in the photo, cropped the FFHQ way (largest first: the index a request picks)."""
        rgb = np.ascontiguousarray(np.asarray(self.photo))
        return [Image.fromarray(render_quad(rgb, np.asarray(face.quad, np.float64), size)) for face in self.aligned.faces]


@dataclass
class Result:
    faces: list[Face]
    notices: list[str] = field(default_factory=list)
    photo: AlignedPhoto | None = None  # for photo inputs: the photo, its crop and every face found there

    @property
    def crop(self) -> Image.Image | None:
        """The aligned crop the face was made from (photo inputs)."""
        return self.photo.aligned.image if self.photo is not None else None


@dataclass(frozen=True)
class PhotoStart:
    """A photo to invert: a file path, a PIL image or an array; ``face``: which detected face (default the
    largest); ``label`` names the photo in messages ("the second photo")."""

    source: str | Path | Image.Image | np.ndarray | None
    aligned: bool = False
    face: int | None = None
    label: str = "the photo"


@dataclass(frozen=True)
class PromptStart:
    """A face made from a prompt (the mapper's fast path)."""

    text: str
    seed: int = 0
    psi: float = 0.7


Start = PhotoStart | PromptStart | Face | np.ndarray


@dataclass
class Variant:
    """One asked strength of an edit: ``face`` is None when it could not run, and ``notices`` say why."""

    name: str  # "manual", "learned" or "oracle"
    face: Face | None
    notices: list[str] = field(default_factory=list)


@dataclass
class EditResult:
    original: Face  # the unedited face (its W+ is what a further edit should start from)
    variants: list[Variant]
    notices: list[str] = field(default_factory=list)
    photo: AlignedPhoto | None = None  # for photo inputs (see Result)

    crop = Result.crop


class Pipeline:
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

    @classmethod
    def from_preset(cls, preset: str | Preset | None = None, weights: Path | None = None) -> Pipeline:
        """Loads what exists; missing heads are reported by ``missing()``, not raised. Without torch (the runtime
        install) the preset's ONNX export serves every fast path."""
        return cls(load_models(preset, weights))

    def missing(self) -> list[str]:
        return list(self.models.missing)

    @property
    def has_mapper(self) -> bool:
        return self.engine.has("mapper")

    # -----------------------------------------------------------------------------------------------
    # the user's requests

    def random_faces(self, seed: object, count: object = 1, psi: object = 0.7, size: object = 1024) -> Result:
        """Faces of seeds ``seed`` .. ``seed + count - 1``."""
        seed, count = self.limits.seed.check(seed), self.limits.faces.check(count)
        if seed + count - 1 > self.limits.seed.high:
            raise InputError(f"seed must be at most {self.limits.seed.high - count + 1:g} for {count} faces")
        psi, size = self.limits.psi.check(psi), self.limits.size.check(size)
        faces = [self._face(self._seeded_wplus(s, psi), size, seed=s, psi=psi, generator_calls=1)[0]
                 for s in range(seed, seed + count)]
        return self._result(faces)

    def invert(self, photo: PhotoStart | str | Path | Image.Image | np.ndarray | None, refine_steps: object = 0,
               size: object = 1024, progress: Progress | None = None) -> Result:
        """A photo (loaded, aligned, encoded, mapped, optionally refined) -> its face, with its identity distance
        to the person in the photo and pasted back into the photo."""
        result = self._invert(photo, refine_steps, size, progress)
        self._in_photo(result.faces[0], result.photo)
        return result

    def _invert(self, photo: PhotoStart | str | Path | Image.Image | np.ndarray | None, refine_steps: object,
                size: object, progress: Progress | None) -> Result:
        """The inversion alone: what edits and morphs start from."""
        photo = photo if isinstance(photo, PhotoStart) else PhotoStart(photo)
        size, refine_steps = self.limits.size.check(size), self.limits.steps.check(refine_steps)
        refine_steps = self._slow_steps(refine_steps, REFINE_STEPS, "inverting a photo", "refinement", progress)
        loaded = align_photo(photo)
        aligned, notices = loaded.aligned, list(loaded.notices)
        embedding = self.engine.embed_photos([aligned.image])
        if self.has_mapper:
            start = self.engine.map(embedding)
        else:
            start = self._mean_wplus()
            notices.append(f"slow path: no mapper ({self.missing()[0]}), so the inversion starts from the mean "
                           f"face and is refined for {refine_steps} steps")
        calls = 0
        if refine_steps:
            refined = self._slow().refine_inversion(self.generator, self.image_encoder, aligned.image, start, refine_steps,
                                                    progress=progress)
            start, calls = refined.wplus, refined.generator_calls
            notices.append(f"refined for {refine_steps} steps: loss {refined.losses[0]:.4f} -> {refined.losses[-1]:.4f}")
        face, pixels = self._face(start, size, generator_calls=calls + 1)
        face.scores["clip_similarity"] = cosine(self.engine.embed_pixels(pixels), embedding)
        return self._result([face], notices, photo=loaded)

    def text_to_face(self, prompt: object, seed: object = 0, psi: object = 0.7, size: object = 1024,
                     optimize_steps: object = 0, progress: Progress | None = None) -> Result:
        """Fast path: W+ = w_avg + psi * (f(e) - w_avg), e = the prompt's embedding plus a seeded variation.

        Slow path (``optimize_steps`` > 0, or no mapper): CLIP-guided optimisation from the fast path's
        code, or without a mapper from the seed's face truncated by psi (psi 0: the mean face).
        """
        prompt, notices = check_prompt(prompt)
        seed, psi = self.limits.seed.check(seed), self.limits.psi.check(psi)
        size, optimize_steps = self.limits.size.check(size), self.limits.steps.check(optimize_steps)
        optimize_steps = self._slow_steps(optimize_steps, TEXT_OPTIMIZE_STEPS, "text to face", "CLIP-guided optimisation",
                                          progress)
        text_embedding, more = embed_prompts(self.engine, [prompt])
        notices += more
        if self.has_mapper:
            varied = vary_embedding(text_embedding, TEXT_VARIATION * self.engine.e_scale, seed)
            start = truncate(self.engine.map(varied), self.engine.w_avg, psi)
        else:
            start = self._seeded_wplus(seed, psi)
            notices.append(f"no mapper: {self.missing()[0]}")
        calls = 0
        if optimize_steps:
            notices.append(f"slow path: CLIP-guided optimisation, {optimize_steps} steps at 256 px")
            result = self._slow().text_to_face_optimize(self.generator, self.image_encoder, text_embedding, start,
                                                        optimize_steps, progress=progress)
            start, calls = result.wplus, result.generator_calls
        face, pixels = self._face(start, size, seed=seed, psi=psi, generator_calls=calls + 1)
        face.scores["text_score"] = cosine(self.engine.embed_pixels(pixels), text_embedding)
        return self._result([face], notices)

    def face_of(self, start: Start, size: object = 1024, progress: Progress | None = None) -> Result:
        """The face an edit or morph starts from: a photo inverted, a prompt's face, a face made earlier or a
        W+ latent rendered."""
        if isinstance(start, PhotoStart):
            return self._invert(start, 0, size, progress)
        if isinstance(start, PromptStart):
            return self.text_to_face(start.text, start.seed, start.psi, size)
        if isinstance(start, Face):
            return self._result([start])
        if _is_array(start):
            size = self.limits.size.check(size)
            return self._result([self._face(self._check_wplus(start), size, generator_calls=1)[0]])
        raise InputError(f"cannot start from a {type(start).__name__}: give a photo, a prompt, a face or a W+ latent")

    def edit(self, start: Start, target: object, source: object = None,
             strengths: Sequence[object] = ("learned",), size: object = 1024, optimize_steps: object = 0,
             progress: Progress | None = None) -> EditResult:
        """One edit per asked strength (a number C, "learned" or "oracle") of the same face and direction.

        A strength that cannot run (no trained strength head) gives a Variant without a face whose notice
        says why; the others still run. ``source``: None = the neutral prompt, "<image>" = E_I of the face.
        Without a mapper a manual C is a CLIP-guided optimisation of ``optimize_steps`` (0: the default).
        """
        size, optimize_steps = self.limits.size.check(size), self.limits.steps.check(optimize_steps)
        if not strengths:
            raise InputError("ask for at least one strength: a number C, 'learned' or 'oracle'")
        strengths = [self._check_strength(s) for s in strengths]
        steps = optimize_steps or EDIT_OPTIMIZE_STEPS  # per manual C, on the slow path (no mapper)
        if not self.has_mapper:
            self._need_gradients(f"editing without a mapper ({self.missing()[0]})")
            manual = sum(not isinstance(s, str) for s in strengths)
            self._expect((REFINE_STEPS if isinstance(start, PhotoStart) else 0) + manual * steps, progress)
        origin = self.face_of(start, size=size, progress=progress)
        original = origin.faces[0]
        wplus = self._check_wplus(original.wplus)
        if not self.has_mapper:
            return self._edit_without_mapper(origin, wplus, target, strengths, size, steps, progress)
        delta, target_embedding, notices = self._direction(wplus, target, source)
        reference = self.engine.embed_pixels(self._render(wplus, SCORE_SIZE))
        variants = []
        for i, strength in enumerate(strengths):
            name = strength if isinstance(strength, str) else "manual"
            if progress:
                progress(i / len(strengths), f"{name} edit")
            try:
                face, more = self._edit_one(wplus, delta, target_embedding, reference, strength, size)
            except WeightsError as err:  # e.g. no trained strength head: the other variants still run
                variants.append(Variant(name, None, [f"{name} C unavailable: {err}"]))
                continue
            variants.append(Variant(name, face, more))
        self._judge_variants(origin, variants)
        return EditResult(original, variants, origin.notices + notices, origin.photo)

    def sweep(self, start: Start, target: object, source: object = None, c_max: object = C_MAX,
              n_frames: object = 16, size: object = 512, progress: Progress | None = None) -> Result:
        """Frames of the edit at C = 0 .. c_max."""
        size, c_max, n_frames = self.limits.size.check(size), self.limits.c_max.check(c_max), self.limits.frames.check(n_frames)
        origin = self.face_of(start, size=size, progress=progress)
        wplus = self._check_wplus(origin.faces[0].wplus)
        delta, target_embedding, notices = self._direction(wplus, target, source)
        reference = None
        faces = []
        for i, c in enumerate(np.linspace(0, c_max, n_frames).tolist()):
            if progress:
                progress(i / n_frames, f"sweep frame {i + 1}/{n_frames}")
            face, pixels = self._face(wplus + np.float32(c) * delta, size, C=c, generator_calls=1)
            embedding = self.engine.embed_pixels(pixels)
            reference = embedding if reference is None else reference  # the first frame (C = 0) is the unedited face
            self._score_edit(face, embedding, reference, target_embedding)
            faces.append(face)
        return Result(faces, origin.notices + notices)

    def morph(self, a: Start, b: Start, n_frames: object = 16, size: object = 512,
              mode: Literal["interpolate", "style_mix"] | str = "interpolate", crossover: object = 8,
              progress: Progress | None = None) -> Result:
        """interpolate: (1-t) a + t b on every slot. style_mix: slots >= crossover move from a to b, the
        rest stay a's (coarse structure of a, finer styles of b at the last frame)."""
        size, n_frames = self.limits.size.check(size), self.limits.frames.check(n_frames)
        mode = str(mode).strip().replace(" ", "_") if isinstance(mode, str) else mode
        if mode not in MORPH_MODES:
            raise InputError(f"mode must be 'interpolate' or 'style_mix', got {mode!r}")
        crossover = self.limits.crossover.check(crossover) if mode == "style_mix" else 0
        first = self.face_of(a, size=size, progress=progress)
        second = self.face_of(_labelled(b, "the second photo"), size=size, progress=progress)
        wa, wb = self._check_wplus(first.faces[0].wplus), self._check_wplus(second.faces[0].wplus)
        moving = (np.arange(self.limits.n_slots) >= crossover).astype(np.float32)[None, :, None]
        faces = []
        for i, t in enumerate(np.linspace(0, 1, n_frames).tolist()):
            if progress:
                progress(i / n_frames, f"morph frame {i + 1}/{n_frames}")
            weight = np.float32(t) * moving
            # a + 1 * (b - a) is b only up to rounding: the last frame takes b's moving slots exactly
            frame = np.where(weight == 1, wb, wa + weight * (wb - wa))
            faces.append(self._face(frame, size, t=t, generator_calls=1)[0])
        for end, origin in ((faces[0], first), (faces[-1], second)):  # each end against its own photo
            if origin.photo is not None:
                end.identity = self._identity(origin.photo.descriptor, end)
        return Result(faces, first.notices + second.notices[len(self.notices):])

    # -----------------------------------------------------------------------------------------------
    # helpers

    def _seeded_wplus(self, seed: int, psi: float) -> np.ndarray:
        """The seed's face: z from celeblook.seeds, w = mapping(z) truncated by psi, on every slot."""
        w = truncate(self.engine.mapping(seeded_normal(seed, self.preset.generator.style_dim)[None]), self.engine.w_avg, psi)
        return np.repeat(w[:, None, :], self.limits.n_slots, axis=1)

    def _mean_wplus(self) -> np.ndarray:
        return np.repeat(self.engine.w_avg[:, None, :], self.limits.n_slots, axis=1).astype(np.float32)

    def _slow_steps(self, steps: int, default: int, request: str, slow_path: str, progress: Progress | None) -> int:
        """The optimisation steps a request runs: the asked ones, or ``default`` without a mapper (every request takes
        its slow path then); refused before any work without the torch models, and announced with the time expected."""
        if not self.has_mapper:
            steps = steps or default
            self._need_gradients(f"{request} without a mapper ({self.missing()[0]})")
        elif steps:
            self._need_gradients(slow_path)
        self._expect(steps, progress)
        return steps

    def _need_gradients(self, what: str) -> None:
        """Refuses a slow path before any work when there are no torch models to differentiate (runtime install)."""
        if not self.models.gradients:
            raise WeightsError(f"{what} needs gradients, which the runtime install (ONNX Runtime) has no models for: "
                               f"use {FULL_INSTALL}")

    def _slow(self):
        """celeblook.refine, imported only where torch is (the runtime install has no torch)."""
        from . import refine

        return refine

    def calibrate(self) -> float | None:
        """Times an optimisation step on this machine (the unit of every slow path), so that slow requests say how
        long they will take before they start; None without the torch models. The app runs it at start, in the
        background, when its requests would take a slow path."""
        return self._slow().calibrate(self.generator, self.image_encoder) if self.models.gradients else None

    def _expect(self, steps: int, progress: Progress | None) -> None:
        """Before a slow path starts: its optimisation steps and, once a step was timed here, the time they take."""
        if not steps or progress is None:
            return
        per_step = self._slow().seconds_per_step(self.generator)
        expected = (f"~{self._slow().duration(steps * per_step)} expected ({per_step:.1f} s per step on this machine)"
                    if per_step else "the time per step is measured by the first one")
        progress(0.0, f"slow path: {steps} optimisation steps at 256 px, {expected}")

    def _edit_one(self, wplus: np.ndarray, delta: np.ndarray, target_embedding: np.ndarray, reference: np.ndarray,
                  strength: float | str, size: int) -> tuple[Face, list[str]]:
        notices, calls = [], 1  # the reference render
        if strength == "learned":
            if not self.engine.has("strength"):
                raise WeightsError(next(m for m in self.missing() if m.startswith("strength")))
            c = float(self.engine.strength(wplus, target_embedding, delta)[0])
        elif strength == "oracle":
            def similarity(c: float) -> float:
                return cosine(reference, self.engine.embed_pixels(self._render(wplus + np.float32(c) * delta, SCORE_SIZE)))

            found = oracle_strength(similarity, TARGET_SIMILARITY)  # the original's embedding is already at hand
            c, calls = found.strength, calls + found.generator_calls
            if found.note:
                notices.append(found.note)
        else:
            c = float(strength)
        face, pixels = self._face(wplus + np.float32(c) * delta, size, C=c, generator_calls=calls + 1)
        self._score_edit(face, self.engine.embed_pixels(pixels), reference, target_embedding)
        return face, notices

    def _edit_without_mapper(self, origin: Result, wplus: np.ndarray, target: object, strengths: list[float | str],
                             size: int, steps: int, progress: Progress | None) -> EditResult:
        """The slow path on public weights alone: CLIP-guided optimisation toward the target prompt, with the
        manual C as the weight of the text term; learned and oracle C need the mapper's edit direction."""
        target, notices = check_prompt(target, "target prompt")
        target_embedding, more = embed_prompts(self.engine, [target])
        notices += more + [f"slow path: no mapper, so each manual C is a CLIP-guided optimisation of {steps} steps at 256 px"]
        reference = self.engine.embed_pixels(self._render(wplus, SCORE_SIZE))
        variants = []
        for strength in strengths:
            name = strength if isinstance(strength, str) else "manual"
            if isinstance(strength, str):
                variants.append(Variant(name, None, [f"{name} C unavailable: it needs the trained mapper and "
                                                     f"strength head ({self.missing()[0]})"]))
                continue
            found = self._slow().edit_optimize(self.generator, self.image_encoder, wplus, target_embedding, strength, steps,
                                               progress=progress)
            face, pixels = self._face(found.wplus, size, C=strength, generator_calls=found.generator_calls + 2)
            self._score_edit(face, self.engine.embed_pixels(pixels), reference, target_embedding)
            variants.append(Variant(name, face))
        self._judge_variants(origin, variants)
        return EditResult(origin.faces[0], variants, origin.notices + notices, origin.photo)

    @staticmethod
    def _score_edit(face: Face, embedding: np.ndarray, reference: np.ndarray, target_embedding: np.ndarray) -> None:
        """An edit's CLIP similarity to the unedited face (``reference``) and its text score, from its embedding."""
        face.scores["clip_similarity"] = cosine(embedding, reference)
        face.scores["text_score"] = cosine(embedding, target_embedding)

    def _identity(self, reference: np.ndarray | None, face: Face, of: str = "the photo") -> IdentityDistance:
        """How far the person in ``face`` is from ``reference`` (a face descriptor); also in its scores."""
        found = identity_distance(reference, face.image) if reference is not None else IdentityDistance(
            None, f"no face found in {of}")
        if found.distance is not None:
            face.scores["identity_distance"] = found.distance
        return found

    def _in_photo(self, face: Face, photo: AlignedPhoto | None, reference: np.ndarray | None = None) -> None:
        """The face's identity against the photo's person (or ``reference``, the unedited face's descriptor, when
        there is no photo), and the face pasted back into the photo."""
        if photo is None:
            face.identity = self._identity(reference, face, "the unedited face")
            return
        face.identity = self._identity(photo.descriptor, face)
        face.pasted = paste_back(photo.photo, photo.aligned, face.image)

    def _judge_variants(self, origin: Result, variants: list[Variant]) -> None:
        """Each edit against the person in the photo (or, for faces made here, the unedited face)."""
        reference = face_descriptor(origin.faces[0].image) if origin.photo is None else None
        for variant in variants:
            if variant.face is not None:
                self._in_photo(variant.face, origin.photo, reference)

    def _check_strength(self, strength: object) -> float | str:
        if isinstance(strength, str) and strength.strip() in ("learned", "oracle"):
            return strength.strip()
        try:
            return self.limits.strength.check(strength)
        except InputError:
            raise InputError(f"strength must be a number from {self.limits.strength.low:g} to "
                             f"{self.limits.strength.high:g}, 'learned' or 'oracle', got {strength!r}"[:200]) from None

    def _face(self, wplus: np.ndarray, size: int, **scores: float) -> tuple[Face, np.ndarray]:
        """The face and its pixels (N,3,size,size), which scoring reads instead of rendering again."""
        pixels = self._render(wplus, size)
        face = Face(Image.fromarray(to_uint8(pixels)[0]), np.array(wplus[0], np.float32), dict(scores))
        return face, pixels

    def _render(self, wplus: np.ndarray, size: int) -> np.ndarray:
        return self.engine.synthesize(np.asarray(wplus, np.float32), size)

    def _result(self, faces: list[Face], notices: Sequence[str] = (), **photo) -> Result:
        return Result(faces, self.notices + list(notices), **photo)

    def _check_wplus(self, wplus: object) -> np.ndarray:
        shape = (self.limits.n_slots, self.preset.generator.style_dim)
        if hasattr(wplus, "detach"):  # a torch tensor (library callers)
            wplus = wplus.detach().cpu().numpy()
        try:
            wplus = np.asarray(wplus, dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(f"a latent must be a {shape[0]}x{shape[1]} array of numbers (W+)") from None
        if wplus.ndim == 3 and wplus.shape[0] == 1:
            wplus = wplus[0]
        if tuple(wplus.shape) != shape:
            raise InputError(f"a latent must have shape {shape[0]}x{shape[1]} (W+), got {tuple(wplus.shape)}")
        if not np.isfinite(wplus).all():
            raise InputError("the latent contains NaN or infinite values")
        return wplus[None].copy()

    def _direction(self, wplus: np.ndarray, target: object, source: object) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(delta, target embedding, notices); source None/empty = the neutral prompt, '<image>' = E_I(G(wplus))."""
        if not self.has_mapper:
            raise WeightsError(self.missing()[0])
        target, notices = check_prompt(target, "target prompt")
        if source is None or (isinstance(source, str) and not source.strip()):
            source = DEFAULT_SOURCE
        else:
            source, more = check_prompt(source, "source prompt")
            notices += more
        if source == SOURCE_FROM_IMAGE:
            embeddings, more = embed_prompts(self.engine, [target])
            source_embedding = self.engine.embed_pixels(self._render(wplus, SCORE_SIZE))
        else:
            embeddings, more = embed_prompts(self.engine, [target, source])
            source_embedding = embeddings[1:]
        target_embedding = embeddings[:1]
        return edit_direction(self.engine, target_embedding, source_embedding), target_embedding, notices + more


def load_models(preset: str | Preset | None = None, weights: Path | None = None) -> Models:
    """The full install's models (celeblook.factory: torch, with the ONNX engine when ``CELEBLOOK_BACKEND=onnx``),
    or, where torch is not installed, the runtime install's: the preset's ONNX export alone."""
    if torch_installed():
        from .factory import load_models as load_torch_models

        return load_torch_models(preset, weights)
    if backend_name(default="onnx") != "onnx":
        raise WeightsError(f"{BACKEND_ENV}=torch needs {FULL_INSTALL}; this install has ONNX Runtime only")
    return load_runtime_models(preset if isinstance(preset, Preset) else get_preset(preset), weights)


def _is_array(x: object) -> bool:
    """A W+ latent as an array: numpy, or a torch tensor from library callers (never imported here)."""
    return isinstance(x, np.ndarray) or hasattr(x, "detach")


def align_photo(photo: PhotoStart, size: int = 1024) -> AlignedPhoto:
    """Load a photo (bombs, EXIF, modes, downscaling: celeblook.photo) and crop its chosen face the FFHQ way.
    Needs no models: ``python -m celeblook align`` and the pipeline share it."""
    already = check_flag("already aligned", photo.aligned)
    face = None if photo.face is None else FACE_INDEX.check(photo.face)
    try:
        loaded = load_photo(photo.source)
    except InputError as err:  # say which photo, when there are two
        raise (InputError(f"{photo.label}: {err}") if photo.label != PhotoStart.label else err) from None
    aligned = align_face(loaded.image, size=size, already_aligned=already, face=face, label=photo.label)
    return AlignedPhoto(loaded.image, aligned, loaded.notices + aligned.notices, loaded.full_size)


def _labelled(start: Start, label: str) -> Start:
    """A photo start named for messages, unless the caller named it."""
    if isinstance(start, PhotoStart) and start.label == PhotoStart.label:
        return PhotoStart(start.source, start.aligned, start.face, label)
    return start
