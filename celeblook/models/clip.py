"""The CLIP teacher: OpenCLIP image tower (E_I) and text tower (E_T), both giving unit-norm 768-d embeddings.

The pretrained tag decides three things, all read from open_clip's registry (``get_pretrained_cfg``):
the weights, the input mean/std (laion2b_s32b_b82k: 0.5/0.5; openai and most others: OpenAI's constants)
and the activation (openai, metaclip_* and dfn2b were trained with QuickGELU; open_clip's plain
``ViT-L-14`` config builds GELU and only warns, so we force QuickGELU from the tag).

Weights are never downloaded here. They are read from, in order: an explicit file, the file
``weights/open_clip_<model>_<tag>.safetensors`` and the Hugging Face hub cache (where open_clip or
``python -m celeblook weights download open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors`` put them). Missing -> WeightsError naming that command.

The ``tiny`` preset uses ``celeblook-tiny-clip`` (open_clip_configs/): ViT-L-14's tokenizer, context and
embedding size with 2-layer towers (image: 256 wide, 32 px patches; text: 64 wide), seeded random weights.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from ..errors import InputError, WeightsError
from ..preprocess import OPENAI_MEAN, OPENAI_STD
from .image_encoder import ImageEncoder, one_line, seeded_init

CLIP_DOWNLOAD_COMMAND = "python -m celeblook weights download {file}"  # a weights/manifest.json name
TINY_CLIP_MODEL = "celeblook-tiny-clip"
CONFIG_DIR = Path(__file__).with_name("open_clip_configs")
HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # open_clip's preference order


class PromptTruncatedWarning(UserWarning):
    """A prompt was longer than the text tower's context and was cut."""


def register_model_configs() -> None:
    """Add our open_clip model configs (``celeblook-tiny-clip``) to open_clip's registry, once."""
    if TINY_CLIP_MODEL not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR)


@dataclass(frozen=True)
class ClipSpec:
    """An open_clip model name + pretrained tag and what the tag implies."""

    model_name: str
    tag: str | None
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    quick_gelu: bool = False
    hub_id: str = ""  # 'org/repo/' or 'org/repo/file' as in open_clip's registry; '' = not on the hub

    @classmethod
    def resolve(cls, model_name: str, tag: str | None) -> ClipSpec:
        if tag is None:
            return cls(model_name, None)
        cfg = open_clip.get_pretrained_cfg(model_name, tag)
        if not cfg:
            known = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
            raise WeightsError(f"unknown open_clip tag {tag!r} for {model_name} (known tags: {known})")
        return cls(
            model_name,
            tag,
            mean=tuple(cfg.get("mean", OPENAI_MEAN)),
            std=tuple(cfg.get("std", OPENAI_STD)),
            quick_gelu=bool(cfg.get("quick_gelu", False)),
            hub_id=cfg.get("hf_hub", ""),
        )

    @property
    def local_file(self) -> Path:
        """Where a downloaded or converted checkpoint for this model + tag is kept in ``weights/``."""
        from ..presets import weights_dir  # presets imports the models package; import here to avoid a cycle

        return weights_dir() / f"open_clip_{self.model_name}_{self.tag}.safetensors"

    def hub_files(self) -> tuple[str, tuple[str, ...]]:
        """(repo id, candidate file names) of the tag's weights on the Hugging Face hub."""
        org, repo, filename = (self.hub_id.split("/", 2) + ["", ""])[:3]
        repo_id = f"{org}/{repo}"
        if not filename:
            return repo_id, HUB_FILES
        if filename.endswith((".bin", ".pth")):
            return repo_id, (filename[:-4] + ".safetensors", filename)
        return repo_id, (filename,)

    def find_weights(self) -> Path | None:
        """The local checkpoint for this tag: ``weights/`` first, then the Hugging Face cache; never downloads."""
        if self.local_file.is_file():
            return self.local_file
        if not self.hub_id:
            return None
        from huggingface_hub import try_to_load_from_cache

        repo_id, filenames = self.hub_files()
        for filename in filenames:
            cached = try_to_load_from_cache(repo_id, filename)
            if isinstance(cached, str):
                return Path(cached)
        return None


class ClipImageTower(ImageEncoder):
    """open_clip's ``model.visual`` + L2 normalisation: CLIP input (N,3,224,224) -> (N,768) unit norm."""

    def __init__(self, visual: nn.Module, spec: ClipSpec, embed_dim: int):
        super().__init__(spec.mean, spec.std, embed_dim)
        self.tower = visual

    def forward(self, pixels: Tensor) -> Tensor:
        return F.normalize(self.tower(pixels), dim=-1)


class ClipTextTower(nn.Module):
    """open_clip's text transformer + L2 normalisation: tokens (N,77) int64 -> (N,768) unit norm."""

    def __init__(self, text: nn.Module):
        super().__init__()
        self.tower = text

    def forward(self, tokens: Tensor) -> Tensor:
        return F.normalize(self.tower(tokens), dim=-1)


class ClipTeacher(nn.Module):
    """OpenCLIP image and text towers, frozen (eval, no parameter gradients) but differentiable in inputs."""

    def __init__(self, model: open_clip.CustomTextCLIP, spec: ClipSpec, source: str):
        super().__init__()
        self.spec = spec
        self.source = source  # the weights' origin: a file path, or 'random (seed N)'
        self.model = model  # the open_clip model; its state dict is the checkpoint format we read and write
        embed_dim = model.text.output_dim
        self.visual = ClipImageTower(model.visual, spec, embed_dim)
        self.text = ClipTextTower(model.text)
        self.tokenizer = open_clip.get_tokenizer(spec.model_name)
        self.context_length = model.context_length
        self.embed_dim = embed_dim
        self.eval().requires_grad_(False)

    def embed_images(self, images: Sequence[Image.Image]) -> Tensor:
        """PIL pictures -> (N,768) unit-norm embeddings."""
        return self.visual.embed_images(images)

    def embed_tensor(self, x: Tensor) -> Tensor:
        """Generator output in [-1,1], (N,3,H,W) -> (N,768) unit norm; differentiable in x."""
        return self.visual.embed_tensor(x)

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, list[bool]]:
        """Prompts -> ((N,77) int64 tokens, whether each prompt was cut to fit the 77-token context)."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise InputError("no prompts given")
        lengths = []
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise InputError("the prompt is empty; type a description such as 'a smiling woman with red hair'")
            n_tokens = len(self.tokenizer.encode(text))
            if n_tokens == 0:
                raise InputError(f"the prompt {text!r} has no words the text encoder can read")
            lengths.append(n_tokens)
        tokens = self.tokenizer(list(texts), context_length=self.context_length)
        return tokens, [n + 2 > self.context_length for n in lengths]  # + start and end tokens

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> Tensor:
        """Prompts -> (N,768) unit norm. A cut prompt raises PromptTruncatedWarning; use ``tokenize`` for the flags."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens, truncated = self.tokenize(texts)
        if any(truncated):
            cut = [text for text, flag in zip(texts, truncated) if flag]
            warnings.warn(
                f"{len(cut)} prompt(s) longer than {self.context_length} tokens were truncated: {cut[0][:60]!r}...",
                PromptTruncatedWarning,
                stacklevel=2,
            )
        return self.text(tokens.to(self.visual.device))


def _not_random_init_notice(record: logging.LogRecord) -> bool:
    """open_clip logs 'No pretrained weights loaded' for every model we build before loading a file; drop it."""
    return not record.getMessage().startswith("No pretrained weights loaded")


def build_clip(spec: ClipSpec, weights: str | Path | None = None, seed: int = 0) -> ClipTeacher:
    """Build ``spec.model_name`` with the tag's activation; load ``weights`` (a file) or use seeded random weights."""
    register_model_configs()
    root_logger = logging.getLogger()
    root_logger.addFilter(_not_random_init_notice)
    try:
        with seeded_init(seed):
            model = open_clip.create_model(
                spec.model_name, pretrained=None, force_quick_gelu=spec.quick_gelu, force_custom_text=True
            )
    finally:
        root_logger.removeFilter(_not_random_init_notice)
    if weights is None:
        return ClipTeacher(model, spec, source=f"random (seed {seed})")
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"CLIP weights file not found: {path}")
    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except Exception as err:  # safetensors/pickle/shape errors all mean the same thing to the user
        raise WeightsError(
            f"cannot load CLIP weights {path} for {spec.model_name} ({one_line(err)}); the file is corrupt or for another "
            f"model: re-download it with `{CLIP_DOWNLOAD_COMMAND.format(file=spec.local_file.name)}`"
        ) from None
    return ClipTeacher(model, spec, source=str(path))


def create_clip(preset, pretrained: str | Path | None = None) -> ClipTeacher:
    """The preset's CLIP teacher.

    ``pretrained``: None = the preset's tag (``preset.clip_tag``; None there = seeded random weights), a tag
    name of ``preset.clip_model``, or a checkpoint file (read with the preset's tag settings).
    """
    tag = preset.clip_tag
    weights: str | Path | None = None
    if pretrained is not None:
        if isinstance(pretrained, str) and open_clip.get_pretrained_cfg(preset.clip_model, pretrained):
            tag = pretrained
        else:
            weights = pretrained
    spec = ClipSpec.resolve(preset.clip_model, tag)
    if weights is None and tag is not None:
        weights = spec.find_weights()
        if weights is None:
            raise WeightsError(
                f"OpenCLIP {spec.model_name} weights ({tag}) not found in {spec.local_file.parent} or the "
                f"Hugging Face cache; run `{CLIP_DOWNLOAD_COMMAND.format(file=spec.local_file.name)}`"
            )
    return build_clip(spec, weights, seed=preset.seed)


def save_clip(teacher: ClipTeacher, path: str | Path) -> Path:
    """Write the teacher's open_clip state dict (custom-text layout) as safetensors, readable by ``build_clip``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in teacher.model.state_dict().items()}
    save_file(state, str(path), metadata={"model": teacher.spec.model_name, "tag": str(teacher.spec.tag)})
    return path
