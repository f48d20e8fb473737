"""The factory: one obvious way to build every model of a preset, and all of them at once (``load_models``).

Training, export, evaluation and the pipeline build their models here. A missing head never stops
``load_models``: ``Models.missing`` lists what is absent with the command that makes it. The untrained presets
build seeded random heads when they have no files, labelled untrained. Neither does a head whose file is there
but unusable (corrupt, a pickle under a .safetensors name, another preset's): ``Models.missing`` names the
file and the command that replaces it, and an ``UnusableHead`` stands in, so that what needs the head stops
with that line (what does not, runs) instead of quietly taking the paths made for an absent head.

Untrained presets (``tiny``; ``<name>-rehearsal``, a preset's models at their real size) read no weight file:
their generator, CLIP and student are seeded (``train all --rehearse`` runs every stage on them).

Heads are read from ``weights_dir()/<preset>/`` (mapper.safetensors, strength.safetensors) unless another
folder is given.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .engine import Engine, Models
from .errors import WeightsError
from .files import weights_dir
from .hub.formats import format_problem
from .hub.heads import fetch_again
from .hub.weights import require
from .models.checkpoint import load_generator
from .models.clip import ClipTeacher, create_clip
from .models.image_encoder import ImageEncoder, seeded_init
from .models.mapper import Mapper, MapperConfig, load_mapper
from .models.mobilestylegan import Generator
from .models.reference_layout import fill_reference
from .models.refiner import Refiner, load_refiner
from .models.strength import StrengthPredictor, load_strength
from .models.student import create_student, student_path
from .models.torch_engine import TorchEngine
from .presets import Preset, get_preset
from .remedy import Missing, remedy
from .runtime.ort import OrtEngine, backend_name


def resolve_preset(preset: str | Preset | None) -> Preset:
    return preset if isinstance(preset, Preset) else get_preset(preset)


def create_generator(preset: str | Preset | None = None, checkpoint: str | Path | None = None) -> Generator:
    """A frozen generator: ``checkpoint`` (any of the 3 formats) wins; else the preset's.

    Untrained presets (``tiny``, rehearsals): seeded random weights in the published layout, w_avg from 10k
    seeded samples.
    ``ffhq``: the converted safetensors in ``weights_dir()``; a WeightsError names the command if absent.
    """
    if checkpoint is not None:
        return load_generator(checkpoint)
    preset = resolve_preset(preset)
    if not preset.trained:
        return Generator(preset.generator).load_reference(fill_reference(preset.generator, preset.seed))
    return load_generator(require(preset.name, "generator"), preset.generator)


def trained_student(preset: Preset, heads: Path | None = None) -> Path | None:
    """The trained student that serves as E_I: one beside the heads (``train all``'s folder, a downloaded heads
    repository), else a trained preset's installed one (``student_path``); None: the teacher's tower serves."""
    beside = heads / student_path(preset.student).name if heads is not None else None
    if beside is not None and beside.is_file():
        return beside
    installed = student_path(preset.student)
    return installed if preset.trained and installed.is_file() else None


class UnusableHead(torch.nn.Module):
    """In place of a head whose file is there but cannot be used: calling it raises the line that names the file
    and the command that replaces it."""

    e_scale = 1.0  # what TorchEngine reads of a mapper when it is built

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise WeightsError(self.line)


class UnusableHeadError(WeightsError):
    """A head's file is there but cannot serve; ``missing`` names it, why, and the command that replaces it."""

    def __init__(self, missing: Missing):
        super().__init__(str(missing))
        self.missing = missing


def unusable(preset: Preset, part: str, path: Path, problem: str) -> UnusableHeadError:
    """The command that replaces a head: fetched again when a heads repository installed it, else trained."""
    return UnusableHeadError(Missing(part, str(path), fetch_again(preset, path) or remedy(part, preset.name), problem))


def check_head(preset: Preset, part: str, path: Path) -> None:
    """UnusableHeadError when ``path`` or its sidecar is not the format it claims (a pickle under a .safetensors
    name is refused here: never unpickled, never half read)."""
    for file in (path, path.with_suffix(".json")):
        problem = format_problem(file) if file.exists() else None
        if problem:
            raise unusable(preset, part, file, problem)


def create_mapper(preset: Preset, heads: Path, generator: Generator) -> tuple[Mapper | None, str, list[str], list[Missing]]:
    """(mapper or None, the encoder it reads: "teacher" | "student", notices, what is missing)."""
    path = heads / "mapper.safetensors"
    if path.exists():
        check_head(preset, "mapper", path)
        mapper, meta = load_mapper(path, preset.name)
        provenance = meta.get("provenance", {})
        if provenance.get("preset", preset.name) != preset.name:
            raise unusable(preset, "mapper", path, f"trained for preset {provenance['preset']!r}, not {preset.name!r}")
        return mapper.to(generator.w_avg.device), provenance.get("encoder", "teacher"), [], []
    if not preset.trained:
        return seeded_mapper(preset, generator), "teacher", ["mapper: seeded random weights (untrained)"], []
    return None, "teacher", [], [Missing("mapper", str(path), remedy("mapper", preset.name))]


def seeded_mapper(preset: Preset, generator: Generator) -> Mapper:
    """The untrained stand-in for presets with random weights: seeded weights, centres e_c = 0, w_c = w_avg."""
    with seeded_init(preset.seed):
        mapper = Mapper(MapperConfig(embed_dim=preset.embed_dim, style_dim=generator.config.style_dim,
                                     n_slots=generator.config.n_slots, used_slots=generator.config.n_slots - 1))
    mapper.set_centres(torch.zeros(preset.embed_dim), 1.0, generator.w_avg)
    return mapper.to(generator.w_avg.device).eval().requires_grad_(False)


def create_image_encoder(preset: Preset, clip: ClipTeacher, mapper_encoder: str,
                         heads: Path | None = None) -> tuple[ImageEncoder, list[str], list[Missing]]:
    """(E_I for photos, notices, what is missing).

    The distilled student is the product's E_I: it was trained to reproduce the teacher's embeddings, so a
    mapper trained on the teacher reads it too, at a tenth of the cost. Without a trained student the
    teacher's image tower serves (slower), unless the mapper was trained on the student itself.
    """
    student = trained_student(preset, heads)
    if student is not None:
        check_head(preset, "student", student)
        return create_student(preset, student), [f"image encoder: distilled {preset.student} student ({student})"], []
    if clip.visual is None:
        raise WeightsError(f"the {preset.name} CLIP teacher was built without its image tower")
    if not preset.trained:  # an untrained student does not share the (random) teacher's space
        return clip.visual, [], []
    missing = Missing("student", str(student_path(preset.student)), remedy("student", preset.name))
    if mapper_encoder == "student":
        raise WeightsError(f"the mapper reads the student encoder, but {missing}")
    return clip.visual, [f"image encoder: the ViT-L/14 teacher (slow; {missing})"], [missing]


def create_strength(preset: Preset, heads: Path, generator: Generator) -> tuple[StrengthPredictor | None, list[str], list[Missing]]:
    """(StrengthPredictor or None, notices, what is missing); ``tiny`` gets a seeded stand-in like its mapper."""
    path = heads / "strength.safetensors"
    if path.exists():
        check_head(preset, "strength", path)
        return load_strength(path, preset.name).to(generator.w_avg.device), [], []
    if not preset.trained:
        with seeded_init(preset.seed):
            head = StrengthPredictor(w_avg=generator.w_avg.cpu())
        return head.to(generator.w_avg.device).eval().requires_grad_(False), [
            "strength head: seeded random weights (untrained)"], []
    return None, [], [Missing("strength", str(path), remedy("strength", preset.name))]


def create_refiner(preset: Preset, heads: Path, generator: Generator) -> Refiner | None:
    """The refiner in ``heads`` (``train refiner``'s), or None: it is optional, and without it an inversion is the
    mapper's answer (as before R existed); no preset has a seeded stand-in (an untrained R changes nothing)."""
    path = heads / "refiner.safetensors"
    if not path.exists():
        return None
    check_head(preset, "refiner", path)
    return load_refiner(path, preset.name).to(generator.w_avg.device)


def create_engine(preset: Preset, torch_engine: TorchEngine, backend: str | None = None) -> Engine:
    """The engine of the forwards without gradients: the torch models, or (``backend``, default
    ``CELEBLOOK_BACKEND``, is "onnx") the preset's exported graphs, with the torch models running what the export
    lacks."""
    if (backend or backend_name()) != "onnx":
        return torch_engine
    torch.set_num_threads(1)  # one runtime owns the cores (docs/toolchain.md §6)
    return OrtEngine.from_env(preset.name, photo_graph=torch_engine.image_encoder.graph, fallback=torch_engine)


def load_models(preset: str | Preset | None = None, weights: Path | None = None, backend: str | None = None) -> Models:
    """Every model of ``preset``; heads from ``weights`` (default ``weights_dir()/<preset>``), the student beside
    them if there is one; ``backend``: "torch" or "onnx" (default ``CELEBLOOK_BACKEND``).

    Raises WeightsError only for what nothing can run without (the generator, CLIP); absent heads and
    unusable ones (``UnusableHead``) are listed in ``Models.missing``.
    """
    preset = resolve_preset(preset)
    heads = Path(weights) if weights is not None else weights_dir() / preset.name
    generator = create_generator(preset)
    # with the student as E_I the teacher's image tower would sit unused (1.2 GB for ViT-L/14)
    clip = create_clip(preset, image_tower=trained_student(preset, heads) is None)
    notices, missing = list(preset.notices), []
    def stand_in(part: str, path: Path, err: WeightsError) -> tuple[UnusableHead, tuple[list[str], list[Missing]]]:
        """An unusable head: what is missing (its line raised wherever the head is needed)."""
        missing = err.missing if isinstance(err, UnusableHeadError) else unusable(preset, part, path, str(err)).missing
        return UnusableHead(str(missing)), ([], [missing])

    try:
        mapper, mapper_encoder, *found = create_mapper(preset, heads, generator)
    except WeightsError as err:
        (mapper, found), mapper_encoder = stand_in("mapper", heads / "mapper.safetensors", err), "teacher"
    try:
        image_encoder, *encoder_found = create_image_encoder(preset, clip, mapper_encoder, heads)
    except WeightsError as err:  # the student is unusable (or absent where the mapper reads it): the teacher's tower serves
        if clip.visual is None:
            clip = create_clip(preset)  # built without the tower for the student: this rare case loads CLIP again
        image_encoder = clip.visual
        unusable_student, encoder_found = stand_in("student", trained_student(preset, heads) or student_path(preset.student), err)
        if mapper_encoder == "student":  # the mapper reads the student's embeddings: the teacher's would map wrongly
            mapper = unusable_student
    try:
        strength, *strength_found = create_strength(preset, heads, generator)
    except WeightsError as err:
        strength, strength_found = stand_in("strength", heads / "strength.safetensors", err)
    try:
        refiner, refiner_found = create_refiner(preset, heads, generator), ([], [])
    except WeightsError as err:
        refiner, refiner_found = stand_in("refiner", heads / "refiner.safetensors", err)
    for more_notices, more_missing in (found, encoder_found, strength_found, refiner_found):
        notices += more_notices
        missing += more_missing
    engine = create_engine(preset, TorchEngine(generator, clip, image_encoder, mapper, strength, refiner), backend)
    return Models(preset, engine, generator, clip, image_encoder, mapper, strength, refiner, tuple(notices), tuple(missing))
