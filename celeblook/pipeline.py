"""Pipeline: the models composed into what a user asks for (no UI here; app.py and the CLI call this).

    photo --E_I--> e --f--> W+ [--refine--> W+'] --G--> face                       invert
    prompt --E_T--> e_T --f--> W+ (or CLIP-guided optimisation) --G--> face        text_to_face
    W+ + C * (f(e_T(target)) - f(e_T(source))) --G--> face                         edit / sweep
    interpolation or per-slot style mixing of two W+ --G--> frames                 morph

Every method returns a ``Result``: faces (image, the W+ rendered, scores) and notices for the user.
Scores are cosines of E_I embeddings (clip_similarity: to the input face; text_score: to the prompt's E_T
embedding) and the number of generator calls spent. Randomness comes only from per-request
``torch.Generator`` objects, so a seed fully determines its result.

Heads are read from ``weights_dir()/<preset>/`` (mapper.safetensors, strength.safetensors). A missing head
never stops construction: ``missing()`` lists what is absent with the command that makes it, and the
methods that need it raise a WeightsError saying the same. The ``tiny`` preset builds a seeded random
mapper when it has no file, labelled untrained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .errors import InputError, WeightsError
from .media import to_uint8
from .models.image_encoder import seeded_init
from .models.mapper import TRAIN_COMMAND, Mapper, MapperConfig, load_mapper
from .models.strength import C_MAX, TARGET_SIMILARITY
from .presets import Preset, get_preset, weights_dir
from .refine import photo_to_tensor, refine_inversion, text_to_face_optimize
from .text import DEFAULT_SOURCE, SOURCE_FROM_IMAGE, check_prompt, edit_direction, embed_prompts, vary_embedding

Progress = Callable[[float, str], None]
SIZES = (256, 512, 1024)
FRAMES = (2, 64)
MAX_STRENGTH = 2.0  # |C|; the write-up's useful range is 0..0.8
MAX_SEEDS = 64
TEXT_VARIATION = 0.5  # seeded spread of a prompt's embedding, in units of the centre set's RMS spread
TEXT_OPTIMIZE_STEPS = 100  # the slow path's default when no mapper is loaded
STRENGTH_TRAIN_COMMAND = "python -m celeblook train strength --preset {preset} --out weights/{preset}"


@dataclass
class Face:
    image: Image.Image
    wplus: Tensor  # (23,512) float32
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class Result:
    faces: list[Face]
    notices: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(self, preset: Preset, generator, clip, encoder, mapper: Mapper | None, strength=None,
                 notices: Sequence[str] = (), missing: Sequence[str] = (), backend=None):
        self.preset = preset
        self.backend = backend  # OrtBackend (CELEBLOOK_BACKEND=onnx): runs the no-gradient forwards it has graphs for
        self.generator = generator
        self.clip = clip  # ClipTeacher: E_T, and E_I when the mapper reads the teacher
        self.encoder = encoder  # the E_I the mapper was trained on (teacher or student)
        self.mapper = mapper
        self.strength = strength
        self.notices = list(notices)  # standing notes about the loaded models, repeated in every Result
        self._missing = list(missing)

    # -----------------------------------------------------------------------------------------------
    # construction

    @classmethod
    def from_preset(cls, preset: str | Preset | None = None, weights: Path | None = None) -> Pipeline:
        """Loads what exists; missing heads are reported by ``missing()``, not raised."""
        from .models import create_generator
        from .models.clip import create_clip

        if not isinstance(preset, Preset):
            try:
                preset = get_preset(preset)
            except ValueError as err:
                raise InputError(str(err)) from None
        heads = Path(weights) if weights is not None else weights_dir() / preset.name
        generator = create_generator(preset)
        # with the student as E_I the teacher's image tower would sit unused (1.2 GB for ViT-L/14)
        clip = create_clip(preset, image_tower=not student_serves(preset))
        notices, missing = [], []
        if not preset.trained:
            notices.append(f"{preset.label}: every model has random weights, so faces are patterns, not people")

        mapper, encoder_name, mapper_notices, mapper_missing = load_mapper_head(preset, heads, generator)
        notices += mapper_notices
        missing += mapper_missing
        encoder, encoder_notices, encoder_missing = pick_image_encoder(preset, clip, encoder_name)
        notices += encoder_notices
        missing += encoder_missing

        strength, strength_notices, strength_missing = load_strength_head(preset, heads, generator)
        notices += strength_notices
        missing += strength_missing
        return cls(preset, generator, clip, encoder, mapper, strength, notices, missing, load_backend(preset))

    def missing(self) -> list[str]:
        return list(self._missing)

    # -----------------------------------------------------------------------------------------------
    # the user's requests

    @torch.no_grad()
    def random_faces(self, seeds: list[int], psi: float = 0.7, size: int = 1024) -> Result:
        seeds = _check_seeds(seeds)
        psi, size = _check_psi(psi), _check_size(size)
        faces = []
        for seed in seeds:
            wplus = self.generator.z_to_wplus(self.generator.seeded_z(seed), psi)
            faces.append(self._face(wplus, size, seed=seed, psi=psi, generator_calls=1)[0])
        return self._result(faces)

    def invert(self, photo: Image.Image, refine_steps: int = 0, size: int = 1024,
               progress: Progress | None = None) -> Result:
        if not isinstance(photo, Image.Image):
            raise InputError(f"expected a photo (PIL image), got {type(photo).__name__}")
        size = _check_size(size)
        refine_steps = _check_int("refine_steps", refine_steps, 0, 2000)
        notices = []
        with torch.no_grad():
            embedding = self._embed_photo(photo)
            if self.mapper is not None:
                start = self._map(embedding)
            elif refine_steps > 0:
                start = self._mean_wplus()
                notices.append("no mapper: inversion starts from the mean face and relies on refinement")
            else:
                raise WeightsError(f"{self._missing[0]}; or invert with refinement steps (optimisation only)")
        calls = 0
        if refine_steps:
            refined = refine_inversion(self.generator, self.encoder, photo_to_tensor(photo).to(self._device),
                                       start, refine_steps, progress=progress)
            start, calls = refined.wplus, refined.generator_calls
            notices.append(f"refined for {refine_steps} steps: loss {refined.losses[0]:.4f} -> {refined.losses[-1]:.4f}")
        with torch.no_grad():
            face, pixels = self._face(start, size, generator_calls=calls + 1)
            face.scores["clip_similarity"] = _cos(self._embed(pixels), embedding)
        return self._result([face], notices)

    def text_to_face(self, prompt: str, seed: int = 0, psi: float = 0.7, size: int = 1024,
                     optimize_steps: int = 0, progress: Progress | None = None) -> Result:
        """Fast path: W+ = w_avg + psi * (f(e) - w_avg), e = the prompt's embedding plus a seeded variation.

        Slow path (``optimize_steps`` > 0, or no mapper): CLIP-guided optimisation from the fast path's
        code, or without a mapper from the seed's face truncated by psi (psi 0: the mean face).
        """
        seed, psi, size = _check_seed(seed), _check_psi(psi), _check_size(size)
        optimize_steps = _check_int("optimize_steps", optimize_steps, 0, 2000)
        text_embedding, notices = self._embed_prompts([prompt])
        with torch.no_grad():
            if self.mapper is not None:
                varied = vary_embedding(text_embedding, TEXT_VARIATION * self.mapper.e_scale.item(), seed)
                start = self.generator.truncate(self.mapper(varied), psi)
            else:
                start = self.generator.z_to_wplus(self.generator.seeded_z(seed), psi)
                optimize_steps = optimize_steps or TEXT_OPTIMIZE_STEPS
                notices.append(f"no mapper: {self._missing[0]}")
        calls = 0
        if optimize_steps:
            notices.append(f"slow path: CLIP-guided optimisation, {optimize_steps} steps at 256 px")
            result = text_to_face_optimize(self.generator, self.encoder, text_embedding, start, optimize_steps,
                                           progress=progress)
            start, calls = result.wplus, result.generator_calls
        with torch.no_grad():
            face, pixels = self._face(start, size, seed=seed, psi=psi, generator_calls=calls + 1)
            face.scores["text_score"] = _cos(self._embed(pixels), text_embedding)
        return self._result([face], notices)

    @torch.no_grad()
    def edit(self, wplus: Tensor, target: str, source: str | None = None,
             strength: float | Literal["learned", "oracle"] = "learned", size: int = 1024) -> Result:
        wplus, size = self._check_wplus(wplus), _check_size(size)
        delta, target_embedding, notices = self._direction(wplus, target, source)
        reference = self._embed(self._render(wplus, 256))
        calls = 1
        if strength == "learned":
            if self.strength is None:
                raise WeightsError(next(m for m in self._missing if m.startswith("strength")))
            c = float(self._strength(wplus, target_embedding, delta)[0])
        elif strength == "oracle":
            from .strength_oracle import oracle_strength

            found = oracle_strength(self.generator, self.encoder, wplus, delta, target=TARGET_SIMILARITY,
                                   reference=reference)  # the original's embedding is already at hand
            c, calls = found.strength, calls + found.generator_calls
            if found.note:
                notices.append(found.note)
        else:
            c = _check_strength(strength)
        face, pixels = self._face(wplus + c * delta, size, C=c, generator_calls=calls + 1)
        edited = self._embed(pixels)
        face.scores["clip_similarity"] = _cos(edited, reference)
        face.scores["text_score"] = _cos(edited, target_embedding)
        return self._result([face], notices)

    @torch.no_grad()
    def sweep(self, wplus: Tensor, target: str, source: str | None = None, c_max: float = C_MAX,
              n_frames: int = 16, size: int = 512) -> Result:
        wplus, size = self._check_wplus(wplus), _check_size(size)
        c_max, n_frames = _check_strength(c_max), _check_int("n_frames", n_frames, *FRAMES)
        delta, target_embedding, notices = self._direction(wplus, target, source)
        reference = None
        faces = []
        for c in torch.linspace(0, c_max, n_frames).tolist():
            face, pixels = self._face(wplus + c * delta, size, C=c, generator_calls=1)
            embedding = self._embed(pixels)
            reference = embedding if reference is None else reference
            face.scores["clip_similarity"] = _cos(embedding, reference)
            face.scores["text_score"] = _cos(embedding, target_embedding)
            faces.append(face)
        return self._result(faces, notices)

    @torch.no_grad()
    def morph(self, wplus_a: Tensor, wplus_b: Tensor, n_frames: int = 16, size: int = 512,
              mode: Literal["interpolate", "style_mix"] = "interpolate", crossover: int = 8) -> Result:
        """interpolate: (1-t) a + t b on every slot. style_mix: slots >= crossover move from a to b, the
        rest stay a's (coarse structure of a, finer styles of b at the last frame)."""
        a, b = self._check_wplus(wplus_a), self._check_wplus(wplus_b)
        size, n_frames = _check_size(size), _check_int("n_frames", n_frames, *FRAMES)
        if mode not in ("interpolate", "style_mix"):
            raise InputError(f"mode must be 'interpolate' or 'style_mix', got {mode!r}")
        slots = self.generator.config.n_slots
        crossover = _check_int("crossover", crossover, 0, slots - 1) if mode == "style_mix" else 0
        moving = (torch.arange(slots, device=a.device) >= crossover).float()[None, :, None]
        faces = []
        for t in torch.linspace(0, 1, n_frames).tolist():
            # lerp is exact at both ends (a at t=0, b at t=1), so the first and last frames are the inputs
            faces.append(self._face(torch.lerp(a, b, t * moving), size, t=t, generator_calls=1)[0])
        return self._result(faces)

    # -----------------------------------------------------------------------------------------------
    # helpers

    @property
    def _device(self) -> torch.device:
        return self.generator.w_avg.device

    def _mean_wplus(self) -> Tensor:
        return self.generator.w_avg[:, None, :].expand(1, self.generator.config.n_slots, -1).clone()

    def _face(self, wplus: Tensor, size: int, **scores: float) -> tuple[Face, Tensor]:
        """The face and its pixels (N,3,size,size), which scoring reads instead of rendering again."""
        pixels = self._render(wplus, size)
        face = Face(Image.fromarray(to_uint8(pixels)[0]), wplus[0].detach().float().cpu().clone(), dict(scores))
        return face, pixels

    def _uses(self, graph: str) -> bool:
        return self.backend is not None and self.backend.has(graph)

    def _render(self, wplus: Tensor, size: int) -> Tensor:
        """G(W+) at ``size`` without gradients: the ONNX graph when the backend has it."""
        if self._uses(f"synthesis_{size}"):
            return self.backend.synthesize(wplus, size).to(self._device)
        return self.generator(wplus, size=size)

    def _embed_photo(self, photo: Image.Image) -> Tensor:
        teacher = self.encoder is self.clip
        if self._uses("image_encoder_teacher" if teacher else "image_encoder"):
            return self.backend.embed_images([photo], teacher=teacher).to(self._device)
        return self.encoder.embed_images([photo]).float()

    def _embed_prompts(self, prompts: list[str]) -> tuple[Tensor, list[str]]:
        encode = self.backend.embed_tokens if self._uses("text_encoder") else None
        embeddings, notices = embed_prompts(self.clip, prompts, encode)
        return embeddings.to(self._device), notices

    def _map(self, embedding: Tensor) -> Tensor:
        return self.backend.mapper(embedding).to(self._device) if self._uses("mapper") else self.mapper(embedding)

    def _strength(self, wplus: Tensor, text_embedding: Tensor, delta: Tensor) -> Tensor:
        if self._uses("strength"):
            return self.backend.strength(wplus, text_embedding, delta)
        return self.strength(wplus, text_embedding, delta)

    def _embed(self, pixels: Tensor) -> Tensor:
        return self.encoder.embed_tensor(pixels).float()

    def _result(self, faces: list[Face], notices: Sequence[str] = ()) -> Result:
        return Result(faces, self.notices + list(notices))

    def _check_wplus(self, wplus) -> Tensor:
        shape = (self.generator.config.n_slots, self.generator.config.style_dim)
        wplus = torch.as_tensor(wplus, dtype=torch.float32)
        if wplus.dim() == 3 and wplus.shape[0] == 1:
            wplus = wplus[0]
        if tuple(wplus.shape) != shape:
            raise InputError(f"a latent must have shape {shape[0]}x{shape[1]} (W+), got {tuple(wplus.shape)}")
        if not torch.isfinite(wplus).all():
            raise InputError("the latent contains NaN or infinite values")
        return wplus[None].to(self._device)

    def _direction(self, wplus: Tensor, target: str, source: str | None) -> tuple[Tensor, Tensor, list[str]]:
        """(delta, target embedding, notices); source None = the neutral prompt, '<image>' = E_I(G(wplus))."""
        if self.mapper is None:
            raise WeightsError(self._missing[0])
        target = check_prompt(target, "target prompt")
        source = DEFAULT_SOURCE if source is None else check_prompt(source, "source prompt")
        if source == SOURCE_FROM_IMAGE:
            embeddings, notices = self._embed_prompts([target])
            source_embedding = self.encoder.embed_tensor(self.generator(wplus, size=256)).float()
        else:
            embeddings, notices = self._embed_prompts([target, source])
            source_embedding = embeddings[1:]
        target_embedding = embeddings[:1]
        return edit_direction(self.mapper, target_embedding, source_embedding), target_embedding, notices


def load_backend(preset: Preset):
    """The OrtBackend (``CELEBLOOK_BACKEND=onnx``) for the preset's exported graphs, else None: torch runs all."""
    from .runtime.ort import OrtBackend, backend_name

    return OrtBackend.from_env(preset.name) if backend_name() == "onnx" else None


def load_mapper_head(preset: Preset, heads: Path, generator) -> tuple[Mapper | None, str, list[str], list[str]]:
    """(mapper or None, the encoder it reads: "teacher" | "student", notices, missing lines)."""
    path = heads / "mapper.safetensors"
    command = TRAIN_COMMAND.format(preset=preset.name)
    if path.exists():
        mapper, meta = load_mapper(path)
        provenance = meta.get("provenance", {})
        if provenance.get("preset", preset.name) != preset.name:
            raise WeightsError(f"{path} was trained for preset {provenance['preset']!r}, not {preset.name!r}: "
                               f"run `{command}`")
        return mapper.to(generator.w_avg.device), provenance.get("encoder", "teacher"), [], []
    if not preset.trained:
        return seeded_mapper(preset, generator), "teacher", ["mapper: seeded random weights (untrained)"], []
    return None, "teacher", [], [f"mapper weights missing ({path}): run `{command}`"]


def student_serves(preset: Preset) -> bool:
    """Whether the distilled student is E_I: a trained preset whose student weights exist."""
    from .models.student import student_path

    return preset.trained and student_path(preset.student).exists()


def pick_image_encoder(preset: Preset, clip, mapper_encoder: str) -> tuple[object, list[str], list[str]]:
    """(E_I for photos, notices, missing lines).

    The distilled student is the product's E_I: it was trained to reproduce the teacher's embeddings, so a
    mapper trained on the teacher reads it too, at a tenth of the cost. Without a trained student the
    teacher serves (slower), unless the mapper was trained on the student itself.
    """
    from .models.student import TRAIN_COMMAND as STUDENT_COMMAND
    from .models.student import create_student, student_path

    if student_serves(preset):
        return create_student(preset), [f"image encoder: distilled {preset.student} student"], []
    if not preset.trained:  # an untrained student does not share the (random) teacher's space
        return clip, [], []
    line = f"student image encoder missing ({student_path(preset.student)}): run `{STUDENT_COMMAND} --preset {preset.name}`"
    if mapper_encoder == "student":
        raise WeightsError(f"the mapper reads the student encoder, but {line}")
    return clip, [f"image encoder: the ViT-L/14 teacher (slow; {line})"], [line]


def load_strength_head(preset: Preset, heads: Path, generator) -> tuple[object | None, list[str], list[str]]:
    """(StrengthPredictor or None, notices, missing lines); ``tiny`` gets a seeded stand-in like its mapper."""
    from .models.strength import StrengthPredictor, load_strength

    path = heads / "strength.safetensors"
    command = STRENGTH_TRAIN_COMMAND.format(preset=preset.name)
    if path.exists():
        return load_strength(path, command).to(generator.w_avg.device), [], []
    if not preset.trained:
        with seeded_init(preset.seed):
            head = StrengthPredictor(w_avg=generator.w_avg.cpu())
        return head.to(generator.w_avg.device).eval().requires_grad_(False), [
            "strength head: seeded random weights (untrained)"], []
    return None, [], [f"strength head weights missing ({path}): run `{command}`"]


def seeded_mapper(preset: Preset, generator) -> Mapper:
    """The untrained stand-in for presets with random weights: seeded weights, centres e_c = 0, w_c = w_avg."""
    with seeded_init(preset.seed):
        mapper = Mapper(MapperConfig(embed_dim=preset.embed_dim, style_dim=generator.config.style_dim,
                                     n_slots=generator.config.n_slots, used_slots=generator.config.n_slots - 1))
    mapper.set_centres(torch.zeros(preset.embed_dim), 1.0, generator.w_avg)
    return mapper.to(generator.w_avg.device).eval().requires_grad_(False)


def _cos(a: Tensor, b: Tensor) -> float:
    return float(F.cosine_similarity(a.float(), b.float(), dim=-1).mean())


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if not low <= int(value) <= high:
        raise InputError(f"{name} must be {low}..{high}, got {value}")
    return int(value)


def _check_float(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be {low}..{high}, got {value}")
    return float(value)


def _check_size(size) -> int:
    if size not in SIZES:
        raise InputError(f"size must be one of {', '.join(map(str, SIZES))}, got {size!r}")
    return int(size)


def _check_psi(psi) -> float:
    return _check_float("psi", psi, 0.0, 1.0)


def _check_strength(c) -> float:
    if isinstance(c, str):
        raise InputError(f"strength must be a number, 'learned' or 'oracle', got {c!r}")
    return _check_float("strength C", c, -MAX_STRENGTH, MAX_STRENGTH)


def _check_seed(seed) -> int:
    return _check_int("seed", seed, 0, 2**63 - 1)


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, str)) or not 1 <= len(seeds) <= MAX_SEEDS:
        raise InputError(f"give 1..{MAX_SEEDS} seeds as a list")
    return [_check_seed(s) for s in seeds]
