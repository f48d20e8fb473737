"""Presets: which models make up a CelebrityLook pipeline, and the settings of the jobs that train and measure them.

A preset is a TOML file in ``celeblook/data/presets/`` (package data), named after it. ``ffhq`` is the real product:
the published MobileStyleGAN FFHQ generator, OpenCLIP ViT-L/14 and an EfficientFormer student. ``tiny`` has models
of the same kinds, small and filled with seeded random weights, built in seconds with no files at all: for tests
and development. Everything ``tiny`` produces is untrained and is labelled so. A file's top-level keys are
``Preset``'s fields, its ``[generator]`` table ``GeneratorConfig``'s, and its ``[mapper]``, ``[strength]``,
``[encoder]``, ``[refiner]`` and ``[eval]`` tables the settings of the job configs below (``[refiner_kwargs]``, like
``[student_kwargs]``, timm's arguments of the refiner's backbone); anything else is one InputError line.

Each job has one config (``MapperTrainConfig``, ``StrengthTrainConfig``, ``EncoderTrainConfig``,
``RefinerTrainConfig``, ``EvalConfig``), and each setting is written once, as a field: its type, its help
(``setting``), the values it may take, and a default where one value serves every preset; a setting without a
default is one that every preset file sets.
``Config.from_preset(preset, **changes)`` is a preset's config with changes; the command line's flags are made
from the same fields (``celeblook.cli.train``), so a new setting needs no other code to be a flag.

Chosen with ``--preset`` on every command, or the ``CELEBLOOK_PRESET`` environment variable.

``<name>-rehearsal`` (``rehearsal_of``) is a preset's models at their real size with seeded random weights, read
from no file: ``train all --rehearse`` runs every stage on them before anyone pays for the real run.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from .errors import InputError
from .limits import C_MAX, TARGET_SIMILARITY
from .models.generator_config import GeneratorConfig
from .settings import NOUNS, SCALARS, check, did_you_mean, setting, setting_fields

if TYPE_CHECKING:
    from .models.mapper import MapperConfig

PRESET_ENV = "CELEBLOOK_PRESET"
DEFAULT_PRESET = "ffhq"
REHEARSAL_SUFFIX = "-rehearsal"
PRESET_DIR = Path(__file__).with_name("data") / "presets"  # package data: plain files, installed or not


class JobConfig:
    """One job's settings: made from a preset (``from_preset``), every setting checked whenever a config is made."""

    job: ClassVar[str]  # its table in a preset file

    def __post_init__(self) -> None:
        for f in setting_fields(type(self)):
            try:
                object.__setattr__(self, f.name, check(f, getattr(self, f.name)))
            except InputError as err:
                raise InputError(f"{self.job} setting {err}") from None

    @classmethod
    def from_preset(cls, preset: str | Preset | None = None, **changes: Any) -> Self:
        """The config of this job that ``preset`` (a name, else ``$CELEBLOOK_PRESET``, else ffhq) sets, with ``changes``."""
        preset = preset if isinstance(preset, Preset) else get_preset(preset)
        names = {f.name for f in fields(cls)}  # (a change can't name "preset": that is the argument its values come from)
        for name in changes:
            if name not in names:
                raise InputError(f"{cls.__name__} has no setting {name!r} to change{did_you_mean(name, names)}")
        own = {"preset": preset.name} if "preset" in names else {}  # the job builds the preset's models
        return cls(**{**preset.training.get(cls.job, {}), **own, **changes})

    @classmethod
    def settings(cls) -> dict[str, Field]:
        """The settings that a preset file's table and the flags set: all but the preset's own name."""
        return {f.name: f for f in setting_fields(cls) if f.name != "preset"}


def _mapper_architecture() -> MapperConfig:
    from .models.mapper import MapperConfig  # torch: imported only when a mapper job's config is made

    return MapperConfig()


# ---------------------------------------------------------------------------------------------------
# the jobs' configs


@dataclass(frozen=True, kw_only=True)
class TrainRun(JobConfig):
    """The settings of how any training job runs (``train all`` takes each once, for every job)."""

    seed: int = setting("seed of the weights and of every random draw", 0, at_least=0)
    amp: str = setting("mixed precision on CUDA", "bf16", choices=("bf16", "fp16", "off"))
    device: str | None = setting("cpu | cuda | cuda:N (default: cuda when available)", None)


@dataclass(frozen=True, kw_only=True)
class MapperTrainConfig(TrainRun):
    """``train mapper`` (celeblook.training.mapper explains the loss and the data)."""

    job: ClassVar[str] = "mapper"
    preset: str = setting("the preset whose generator and CLIP the mapper learns")
    steps: int = setting("training steps", at_least=1)
    batch: int = setting("faces per step, per process under torchrun", at_least=1)
    lr: float = setting("peak learning rate (AdamW; linear warm-up, then cosine decay to 10%)", above=0)
    warmup: int = setting("warm-up steps", at_least=0)
    weight_decay: float = setting("AdamW weight decay", 1e-4, at_least=0)
    grad_clip: float = setting("gradient norm clip", 1.0, above=0)
    encoder: str = setting("which E_I f learns to read", "teacher", choices=("teacher", "student"))
    image_size: int = setting("generator exit (px) the encoder sees", at_least=1)
    psi_min: float = setting("truncation psi is drawn from [psi-min, 1]", at_least=0, at_most=1)
    mix_prob: float = setting("share of style-mixed W+ samples", at_least=0, at_most=1)
    w_mse: float = setting("weight of the W+ MSE term", 1.0, at_least=0)
    w_cos: float = setting("weight of the W+ cosine term (about the mean latent)", 0.1, at_least=0)
    w_consistency: float = setting("weight of the image-space term 1 - cos(E_I(G(f(e))), e)", 0.1, at_least=0)
    consistency_every: int = setting("the image-space term every k steps, 0: never", at_least=0)
    centre_samples: int = setting("generated faces for the CLIP centre and whitening", at_least=1)
    whiten_shrinkage: float = setting("ridge added to the CLIP input covariance before whitening, as a share of "
                                      "its mean eigenvalue", 0.1, at_least=0)
    heldout: int = setting("held-out generated faces for the W+ MSE", at_least=1)
    eval_every: int = setting("held-out W+ MSE every k steps", at_least=1)
    ckpt_every: int = setting("checkpoint every k steps", 1000, at_least=1)
    mapper: MapperConfig = field(default_factory=_mapper_architecture)  # the network's shape (celeblook.models.mapper)


@dataclass(frozen=True, kw_only=True)
class StrengthTrainConfig(TrainRun):
    """``train strength`` (celeblook.training.strength explains the objective)."""

    job: ClassVar[str] = "strength"
    steps: int = setting("training steps", at_least=1)
    batch: int = setting("(latent, prompt) pairs per step", at_least=1)
    lr: float = setting("learning rate (Adam)", above=0)
    target: float = setting("CLIP similarity of a face and its edit that C aims at", TARGET_SIMILARITY, above=0, below=1)
    c_max: float = setting("C ranges over (0, c-max)", C_MAX, above=0)
    psi: float = setting("truncation of the training latents", 0.7, above=0, at_most=1)
    size: int = setting("render size of the CLIP comparison (the generator's cheap exit)", at_least=1)
    grad_clip: float = setting("gradient norm clip", 1.0, above=0)
    checkpoint_every: int = setting("checkpoint every k steps", 100, at_least=1)
    calibration_pairs: int = setting("training pairs whose oracle C sets the head's initial edit size", 8, at_least=0)
    eval_pairs: int = setting("held-out (latent, prompt) pairs of the job's figures (metrics.json)", at_least=2)


@dataclass(frozen=True, kw_only=True)
class EncoderTrainConfig(TrainRun):
    """``train encoder`` (celeblook.training.encoder explains the data and the loss)."""

    job: ClassVar[str] = "encoder"
    steps: int = setting("training steps", at_least=1)
    batch: int = setting("images per step (half real photos with --real-dir)", at_least=2)
    lr: float = setting("learning rate (AdamW)", above=0)
    psi: float = setting("truncation of the generated faces", 0.8, above=0, at_most=1)
    size: int = setting("generator exit (px) of the generated faces", at_least=1)
    n_eval: int = setting("held-out generated faces (and at most this many real photos)", at_least=1)
    checkpoint_every: int = setting("checkpoint every k steps", 500, at_least=1)


@dataclass(frozen=True, kw_only=True)
class RefinerTrainConfig(TrainRun):
    """``train refiner`` (celeblook.training.refiner explains the data and the loss)."""

    job: ClassVar[str] = "refiner"
    steps: int = setting("training steps", at_least=1)
    batch: int = setting("faces per step (half real photos with --real-dir)", at_least=1)
    lr: float = setting("learning rate (AdamW)", above=0)
    iterations: int = setting("refinement iterations k, trained and then the default of every inversion", 2,
                              at_least=1, at_most=8)
    size: int = setting("generator exit (px) of the faces and reconstructions", at_least=1)
    input_size: int = setting("the size (px) R sees both images at, a multiple of --grid", at_least=1)
    grid: int = setting("R's pixel readout sees both images averaged to grid x grid", at_least=1)
    hidden: int = setting("rank of R's residual: its readouts meet in this many units", at_least=1)
    psi_min: float | None = setting("truncation psi is drawn from [psi-min, 1] (default: the mapper's)", None,
                                    at_least=0, at_most=1)
    mix_prob: float | None = setting("share of style-mixed faces (default: the mapper's)", None, at_least=0, at_most=1)
    w_wplus: float = setting("weight of the W+ MSE term (generated faces only)", 1.0, at_least=0)
    w_pixel: float = setting("weight of the pixel MSE term", 10.0, at_least=0)
    w_clip: float = setting("weight of the CLIP term 1 - cos(E_I(G(w)), E_I(x))", 0.1, at_least=0)
    calibration_faces: int = setting("generated faces whose ridge regression sets R's pixel readout before the first "
                                     "step (0: none)", at_least=0)
    ridge: float = setting("ridge of that regression", 1.0, above=0)
    grad_clip: float = setting("gradient norm clip", 1.0, above=0)
    checkpoint_every: int = setting("checkpoint every k steps", 200, at_least=1)
    eval_n: int = setting("held-out generated faces of the job's figures (metrics.json)", at_least=1)
    optimise_steps: int = setting("steps of the refinement by optimisation R is compared with", at_least=1)

    def truncation(self, preset: Preset) -> tuple[float, float]:
        """(psi_min, mix_prob): this job's, else the mapper's (its faces are the ones the mapper learned on)."""
        mapper = preset.training.get("mapper", {})
        return (self.psi_min if self.psi_min is not None else mapper["psi_min"],
                self.mix_prob if self.mix_prob is not None else mapper["mix_prob"])


@dataclass(frozen=True, kw_only=True)
class EvalConfig(JobConfig):
    """``python -m celeblook eval`` and ``train all``'s eval stage (celeblook.evaluate explains each measure)."""

    job: ClassVar[str] = "eval"
    n: int = setting("faces inverted and edited", at_least=1, at_most=1000)
    refine_steps: int = setting("refinement steps of the refined inversion", at_least=0)
    edit_prompts: int = setting("held-out prompts per face", at_least=1)
    strength_pairs: int = setting("held-out (latent, prompt) pairs for the strength comparison", at_least=2)
    size: int = setting("render size of every comparison (the generator's cheap exit; CLIP sees 224)", 256, at_least=1)
    psi: float = setting("truncation of the faces", 0.7, above=0, at_most=1)
    seed: int = setting("seed of the faces (from a stream no training job draws from)", 0, at_least=0)


JOBS: dict[str, type[JobConfig]] = {c.job: c for c in (MapperTrainConfig, StrengthTrainConfig, EncoderTrainConfig,
                                                        RefinerTrainConfig, EvalConfig)}


# ---------------------------------------------------------------------------------------------------
# presets


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    generator: GeneratorConfig
    clip_model: str  # open_clip model name
    clip_tag: str | None = None  # open_clip pretrained tag; None: seeded random weights
    student: str  # timm model name of the distilled image encoder
    embed_dim: int = 768  # CLIP embedding size, the mapper's input
    trained: bool = True  # False: seeded random weights, every output is labelled untrained
    seed: int = 0  # seed of the random weights when not trained
    student_kwargs: Mapping[str, Any] = field(default_factory=dict)  # timm's keyword arguments of the student
    refiner_backbone: str = "efficientformerv2_s0"  # timm model of the refiner (celeblook.models.refiner)
    refiner_kwargs: Mapping[str, Any] = field(default_factory=dict)  # timm's keyword arguments of the refiner
    training: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # job -> the settings its file's table sets
    source: str = ""  # the file it was read from
    rehearsal: bool = False  # another preset's models at their real size, seeded (``rehearsal_of``)

    @property
    def label(self) -> str:
        if self.rehearsal:
            return f"{self.name} (REHEARSAL: real-size models with seeded random weights)"
        return self.name if self.trained else f"{self.name} (untrained random weights)"

    @property
    def notices(self) -> tuple[str, ...]:
        """The standing note on every result of this preset."""
        return () if self.trained else (f"{self.label}: every model has random weights, so faces are patterns, not people",)


def load_preset(path: Path) -> Preset:
    """The preset in a TOML file, named after the file; every key and value checked: one InputError line naming the
    file and what is wrong."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"preset file {path}: {err}") from None
    tables = ("generator", "student_kwargs", "refiner_kwargs", *JOBS)
    top = {f.name: SCALARS[str(f.type).removesuffix(" | None")] for f in fields(Preset) if str(f.type).removesuffix(" | None") in SCALARS}
    del top["name"], top["source"], top["rehearsal"]  # the file's name and path; rehearsal_of's
    for key, value in table.items():
        if key not in top and key not in tables:
            raise InputError(f"preset file {path}: unknown key {key!r}{did_you_mean(key, [*top, *tables])}")
        if key in top and type(value) is not top[key]:
            raise InputError(f"preset file {path}: {key} must be {NOUNS[top[key]]}, got {value!r}")
    missing = [f.name for f in fields(Preset) if f.default is MISSING and f.default_factory is MISSING
               and f.name not in (*table, "name", "generator")]
    if missing:
        raise InputError(f"preset file {path} lacks {', '.join(missing)}")
    return Preset(
        name=path.stem, generator=_generator(path, _table(path, table, "generator")), source=str(path),
        student_kwargs=MappingProxyType(_table(path, table, "student_kwargs")),
        refiner_kwargs=MappingProxyType(_table(path, table, "refiner_kwargs")),
        training=MappingProxyType({job: MappingProxyType(_job_table(path, config, _table(path, table, job)))
                                   for job, config in JOBS.items()}),
        **{key: value for key, value in table.items() if key in top},
    )


def _table(path: Path, table: dict, key: str) -> dict[str, Any]:
    """A table of the file (empty where it has none), its arrays as tuples (the form the model configs take)."""
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"preset file {path}: {key} must be a table ([{key}]), got {value!r}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def _job_table(path: Path, config: type[JobConfig], table: dict[str, Any]) -> dict[str, Any]:
    """A job's table: known settings, each a value it may take, every setting without a default set."""
    where = f"preset file {path} [{config.job}]"
    keys = config.settings()
    checked = {}
    for key, value in table.items():
        if key not in keys:
            raise InputError(f"{where}: unknown setting {key!r}{did_you_mean(key, keys)}")
        try:
            checked[key] = check(keys[key], value)
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
    missing = [name for name, f in keys.items() if f.default is MISSING and f.default_factory is MISSING and name not in table]
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}: every preset sets them")
    return checked


def _generator(path: Path, table: dict[str, Any]) -> GeneratorConfig:
    """``[generator]``: GeneratorConfig's fields, each value of its default's type."""
    defaults = {f.name: f.default for f in fields(GeneratorConfig)}
    for key, value in table.items():
        if key not in defaults:
            raise InputError(f"preset file {path} [generator]: unknown key {key!r}{did_you_mean(key, defaults)}")
        kind = type(defaults[key])
        fits = type(value) is kind or (kind is float and type(value) is int)
        if not fits or (kind is tuple and not all(type(v) is int and v > 0 for v in value)):
            raise InputError(f"preset file {path} [generator]: {key} must be like {defaults[key]!r}, got {value!r}")
    return GeneratorConfig(**{key: float(value) if type(defaults[key]) is float else value for key, value in table.items()})


PRESETS: dict[str, Preset] = {path.stem: load_preset(path) for path in sorted(PRESET_DIR.glob("*.toml"))}


def rehearsal_of(preset: Preset) -> Preset:
    """``preset``'s models at their real size with seeded random weights (``trained=False``: no file is read),
    named ``<name>-rehearsal`` so that nothing made with it passes for the real preset's."""
    if preset.rehearsal:
        return preset
    return replace(preset, name=preset.name + REHEARSAL_SUFFIX, trained=False, rehearsal=True)


def is_preset(name: str) -> bool:
    """Whether ``name`` names a preset (or its rehearsal)."""
    return name in PRESETS or name.removesuffix(REHEARSAL_SUFFIX) in PRESETS


def get_preset(name: str | None = None) -> Preset:
    """The named preset (or ``<name>-rehearsal``), else ``$CELEBLOOK_PRESET``, else ``ffhq``."""
    name = name or os.environ.get(PRESET_ENV) or DEFAULT_PRESET
    base = name.removesuffix(REHEARSAL_SUFFIX)
    if base != name and base in PRESETS:
        return rehearsal_of(PRESETS[base])
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_values(config: type[JobConfig], name: str) -> dict[str, Any]:
    """Each preset's value of a setting (its file's, else the setting's default): what the flag's help lists."""
    default = next(f.default for f in fields(config) if f.name == name)
    return {preset: table.training[config.job].get(name, default) for preset, table in PRESETS.items()}
