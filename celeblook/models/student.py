"""The distilled image encoder: a timm EfficientFormer backbone + a projection to the CLIP embedding.

    CLIP input (N,3,224,224) --re-normalise to ImageNet stats--> EfficientFormer (pooled, C)
        --LayerNorm--> Linear(C, 768) --L2--> unit embedding

It takes exactly the teacher's input (the same CLIP-normalised 224 crop, see celeblook.preprocess), so one
preprocessing path serves both; inside, a fixed affine map turns that into the ImageNet statistics the
backbone was pretrained with. EfficientFormer's attention biases are tied to a 7x7 final grid: it runs
at 224 only.

Our trained students are ``weights/student_<variant>.safetensors`` + a JSON sidecar (``.json``) with the
config, the teacher it was distilled from, provenance and the sha256 of the weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError, WeightsError
from ..files import sha256_file, weights_dir
from ..preprocess import CLIP_SIZE, OPENAI_MEAN, OPENAI_STD
from ..remedy import remedy
from .clip import ClipSpec
from .image_encoder import ImageEncoder, one_line, seeded_init

SIDECAR_KIND = "celeblook-student-encoder"


@dataclass(frozen=True)
class StudentConfig:
    variant: str  # timm model name, e.g. efficientformer_l1
    embed_dim: int = 768
    layer_norm: bool = True  # LayerNorm on the pooled features before the projection
    backbone_kwargs: dict = field(default_factory=dict)  # timm overrides (the tiny preset's depths/dims)
    clip_model: str = "ViT-L-14"  # the teacher it imitates; its tag fixes the input normalisation
    clip_tag: str | None = None
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD

    @classmethod
    def from_preset(cls, preset) -> StudentConfig:
        spec = ClipSpec.resolve(preset.clip_model, preset.clip_tag)
        return cls(
            variant=preset.student,
            embed_dim=preset.embed_dim,
            backbone_kwargs=dict(preset.student_kwargs),
            clip_model=spec.model_name,
            clip_tag=spec.tag,
            mean=spec.mean,
            std=spec.std,
        )

    @classmethod
    def from_json(cls, data: dict) -> StudentConfig:
        data = dict(data)
        for key in ("mean", "std"):
            data[key] = tuple(data[key])
        data["backbone_kwargs"] = {k: tuple(v) if isinstance(v, list) else v for k, v in data["backbone_kwargs"].items()}
        return cls(**data)


class StudentEncoder(ImageEncoder):
    """EfficientFormer + projection; ``forward`` maps CLIP input (N,3,224,224) to (N,768) unit norm."""

    def __init__(self, config: StudentConfig, imagenet_file: str | Path | None = None):
        super().__init__(config.mean, config.std, config.embed_dim)
        self.config = config
        self.backbone = _create_backbone(config, imagenet_file)
        width = self.backbone.num_features
        self.norm = nn.LayerNorm(width) if config.layer_norm else nn.Identity()
        self.proj = nn.Linear(width, config.embed_dim)
        # CLIP-normalised -> ImageNet-normalised: x_in = x * (std_clip / std_in) + (mean_clip - mean_in) / std_in
        in_mean = torch.tensor(self.backbone.pretrained_cfg.get("mean", (0.485, 0.456, 0.406)))
        in_std = torch.tensor(self.backbone.pretrained_cfg.get("std", (0.229, 0.224, 0.225)))
        clip_mean, clip_std = torch.tensor(config.mean), torch.tensor(config.std)
        self.register_buffer("input_scale", (clip_std / in_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", ((clip_mean - in_mean) / in_std).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: Tensor) -> Tensor:
        if pixels.shape[-2:] != (CLIP_SIZE, CLIP_SIZE):
            raise InputError(f"the student encoder takes {CLIP_SIZE}x{CLIP_SIZE} input, got {tuple(pixels.shape)}")
        features = self.backbone(pixels * self.input_scale + self.input_shift)
        return F.normalize(self.proj(self.norm(features)), dim=-1)


def _create_backbone(config: StudentConfig, imagenet_file: str | Path | None) -> nn.Module:
    """timm backbone with pooled output (num_classes=0), optionally from a local timm ImageNet safetensors."""
    if imagenet_file is None:
        return timm.create_model(config.variant, pretrained=False, num_classes=0, **config.backbone_kwargs)
    path = Path(imagenet_file)
    if not path.is_file():
        raise WeightsError(f"ImageNet weights for {config.variant} not found: {path}")
    try:
        return timm.create_model(
            config.variant,
            pretrained=True,
            pretrained_cfg_overlay=dict(file=str(path)),
            num_classes=0,
            **config.backbone_kwargs,
        )
    except Exception as err:  # safetensors header / key / shape errors: one line for the user
        raise WeightsError(f"cannot load ImageNet weights {path} into {config.variant}: {one_line(err)}") from None


def student_path(variant: str) -> Path:
    """Where the trained student for a timm variant lives: ``weights/student_<variant>.safetensors``."""
    return weights_dir() / f"student_{variant}.safetensors"


def sidecar_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def create_student(preset, checkpoint: str | Path | None = None, init_imagenet: str | Path | None = None) -> StudentEncoder:
    """The preset's student encoder, in eval mode with frozen parameters (trainers unfreeze it).

    ``checkpoint``: one of our trained students (safetensors + sidecar); default ``student_path(preset.student)``
    for trained presets. ``init_imagenet``: a fresh student whose backbone starts from a local timm ImageNet
    safetensors (for training). With neither, the ``tiny`` preset gets seeded random weights.
    """
    if checkpoint is not None and init_imagenet is not None:
        raise InputError("give either a trained student checkpoint or ImageNet init weights, not both")
    config = StudentConfig.from_preset(preset)
    if checkpoint is None and init_imagenet is None and preset.trained:
        checkpoint = student_path(preset.student)
        if not checkpoint.is_file():
            raise WeightsError(
                f"no trained student encoder at {checkpoint}; run `{remedy('student', preset.name)}`"
            )
    if checkpoint is not None:
        student = load_student(checkpoint, preset.name)
        teacher = (student.config.clip_model, student.config.clip_tag)
        if teacher != (config.clip_model, config.clip_tag):
            raise WeightsError(
                f"student {checkpoint} was distilled from {teacher[0]} ({teacher[1]}), but preset {preset.name} "
                f"uses {config.clip_model} ({config.clip_tag}); retrain it with `{remedy('student', preset.name)}`"
            )
        return student
    with seeded_init(preset.seed):
        student = StudentEncoder(config, imagenet_file=init_imagenet)
    return student.eval().requires_grad_(False)


def save_student(student: StudentEncoder, path: str | Path, provenance: dict | None = None) -> Path:
    """Write ``path`` (safetensors) and its JSON sidecar (config, teacher, provenance, sha256)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in student.state_dict().items()}
    save_file(state, str(path))
    sidecar = {
        "kind": SIDECAR_KIND,
        "config": asdict(student.config),
        "provenance": provenance or {},
        "sha256": sha256_file(path),
    }
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def load_student(path: str | Path, preset: str = "ffhq") -> StudentEncoder:
    """Read a student written by ``save_student``; WeightsError (with the fix) when missing or corrupt."""
    from safetensors.torch import load_file

    path = Path(path)
    fix = f"retrain it with `{remedy('student', preset)}`"
    if not path.is_file():
        raise WeightsError(f"student encoder weights not found: {path}; {fix}")
    meta = sidecar_path(path)
    try:
        sidecar = json.loads(meta.read_text())
        config = StudentConfig.from_json(sidecar["config"])
        expected_sha = sidecar["sha256"]
    except FileNotFoundError:
        raise WeightsError(f"student encoder {path} has no sidecar {meta.name}; {fix}") from None
    except (ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"student encoder sidecar {meta} is unreadable ({one_line(err)}); {fix}") from None
    if sidecar.get("kind") != SIDECAR_KIND:
        raise WeightsError(f"{meta} is not a student encoder sidecar (kind {sidecar.get('kind')!r})")
    if sha256_file(path) != expected_sha:
        raise WeightsError(f"student encoder {path} is corrupt (sha256 differs from {meta.name}); {fix}")
    try:
        state = load_file(str(path))
        with seeded_init(0):  # the weights are overwritten; keep the caller's RNG untouched
            student = StudentEncoder(config)
        student.load_state_dict(state, strict=True)
    except Exception as err:  # a sidecar that does not match its weights
        raise WeightsError(f"cannot load student encoder {path}: {one_line(err)}; {fix}") from None
    return student.eval().requires_grad_(False)
