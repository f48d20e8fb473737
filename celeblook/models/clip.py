"""The CLIP teacher: OpenCLIP image tower (E_I) and text tower (E_T), both giving unit-norm 768-d embeddings.

The pretrained tag decides three things, all read from open_clip's registry (``get_pretrained_cfg``):
the weights, the input mean/std (laion2b_s32b_b82k: 0.5/0.5; openai and most others: OpenAI's constants)
and the activation (openai, metaclip_* and dfn2b were trained with QuickGELU; open_clip's plain
``ViT-L-14`` config builds GELU and only warns, so we force QuickGELU from the tag).

Weights are never downloaded here. They are read from, in order: an explicit file, the file
``weights/open_clip_<model>_<tag>.safetensors`` and the Hugging Face hub cache (where open_clip or
``python -m celeblook weights download open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors`` put them).
Missing -> WeightsError naming that command.

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
from open_clip.transformer import TextTransformer
from PIL import Image
from torch import Tensor, nn

from ..errors import InputError, WeightsError
from ..files import weights_dir
from ..preprocess import OPENAI_MEAN, OPENAI_STD
from ..remedy import command, remedy
from ..text.tokenizer import CONTEXT_LENGTH, Tokenizer, default_tokenizer, eot_length
from .image_encoder import ImageEncoder, one_line, seeded_init

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

    graph = "image_encoder_teacher"

    def __init__(self, visual: nn.Module, spec: ClipSpec, embed_dim: int):
        super().__init__(spec.mean, spec.std, embed_dim)
        self.tower = visual

    def forward(self, pixels: Tensor) -> Tensor:
        return F.normalize(self.tower(pixels), dim=-1)


def trims_exactly(text: nn.Module) -> bool:
    """Whether dropping the token columns after the last EOT leaves ``text``'s embeddings unchanged.

    True for open_clip's causal towers pooled at the EOT (argmax), such as ViT-L-14 and celeblook-tiny-clip:
    position i attends to positions <= i only, so nothing after the EOT reaches it. Not for bidirectional
    towers (no causal mask; pad masks exist only there), CoCa-style appended class tokens (pooled at the last
    position, which sees every column), 'eos'/'last' pooling, towers without a projection or HF text models.
    """
    return (
        isinstance(text, TextTransformer)
        and text.attn_mask is not None
        and text.cls_emb is None
        and text.pool_type == "argmax"
        and text.text_projection is not None
    )


class CausalTextEncoder(nn.Module):
    """open_clip's causal text transformer on tokens (N,L), any 1 <= L <= 77, -> (N,768) unit norm.

    The same computation as ``TextTransformer.forward`` restricted to the first L positions (the positional
    embedding and the causal mask sliced to L), so tokens cut after their last EOT give the 77-column result.
    This is the graph of text_encoder.onnx (dynamic L); ``ClipTextTower`` does the cutting.
    """

    def __init__(self, text: TextTransformer):
        super().__init__()
        self.text = text

    def forward(self, tokens: Tensor) -> Tensor:
        return causal_embedding(self.text, tokens)


def causal_embedding(text: TextTransformer, tokens: Tensor) -> Tensor:
    """``CausalTextEncoder``'s computation, for towers held elsewhere (``ClipTextTower``)."""
    length = tokens.shape[1]
    x = text.token_embedding(tokens) + text.positional_embedding[:length]
    x = text.ln_final(text.transformer(x, attn_mask=text.attn_mask[:length, :length]))
    eot = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    projection = text.text_projection
    eot = eot @ projection if isinstance(projection, Tensor) else projection(eot)
    return F.normalize(eot, dim=-1)


class ClipTextTower(nn.Module):
    """open_clip's text transformer + L2 normalisation: tokens (N,<=77) int64 -> (N,768) unit norm.

    Prompts are mostly 5-20 tokens of the 77-token context; where that is exact (``trims_exactly``) the
    transformer runs on the columns up to the batch's last EOT only, several times less work.
    """

    def __init__(self, text: nn.Module):
        super().__init__()
        self.tower = text
        self.trims = trims_exactly(text)

    @property
    def causal(self) -> CausalTextEncoder | None:
        """The graph of text_encoder.onnx (any token length), or None where cutting would not be exact."""
        return CausalTextEncoder(self.tower) if self.trims else None

    def forward(self, tokens: Tensor) -> Tensor:
        if not self.trims:
            return F.normalize(self.tower(tokens), dim=-1)
        return causal_embedding(self.tower, tokens[:, : eot_length(tokens)])


class ClipTeacher(nn.Module):
    """OpenCLIP image and text towers, frozen (eval, no parameter gradients) but differentiable in inputs."""

    def __init__(self, model: open_clip.CustomTextCLIP, spec: ClipSpec, source: str):
        super().__init__()
        self.spec = spec
        self.source = source  # the weights' origin: a file path, or 'random (seed N)'
        self.model = model  # the open_clip model; its state dict is the checkpoint format we read and write
        embed_dim = model.text.output_dim
        # no image tower when another E_I (the distilled student) serves: ViT-L/14's is 1.2 GB in fp32
        self.visual = ClipImageTower(model.visual, spec, embed_dim) if model.visual is not None else None
        self.text = ClipTextTower(model.text)
        # CLIP's BPE (celeblook.text.tokenizer), the tokenizer of ViT-L-14 and celeblook-tiny-clip
        context = model.context_length
        self.tokenizer = default_tokenizer() if context == CONTEXT_LENGTH else Tokenizer(context_length=context)
        self.context_length = context
        self.embed_dim = embed_dim
        self.eval().requires_grad_(False)

    def embed_images(self, images: Sequence[Image.Image]) -> Tensor:
        """PIL pictures -> (N,768) unit-norm embeddings."""
        return self._image_tower().embed_images(images)

    def embed_tensor(self, x: Tensor) -> Tensor:
        """Generator output in [-1,1], (N,3,H,W) -> (N,768) unit norm; differentiable in x."""
        return self._image_tower().embed_tensor(x)

    def _image_tower(self) -> ClipImageTower:
        if self.visual is None:
            raise WeightsError(f"this {self.spec.model_name} teacher was loaded without its image tower (text only)")
        return self.visual

    def tokenize(self, texts: Sequence[str]) -> tuple[Tensor, list[bool]]:
        """Prompts -> ((N,77) int64 tokens, whether each prompt was cut to fit the 77-token context)."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise InputError("no prompts given")
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise InputError("the prompt is empty; type a description such as 'a smiling woman with red hair'")
        tokens, truncated = self.tokenizer(texts)
        return torch.from_numpy(tokens), truncated

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
        return self.text(tokens.to(self.text.tower.token_embedding.weight.device))


def _not_random_init_notice(record: logging.LogRecord) -> bool:
    """open_clip logs 'No pretrained weights loaded' for every model we build before loading a file; drop it."""
    return not record.getMessage().startswith("No pretrained weights loaded")


def build_clip(spec: ClipSpec, weights: str | Path | None = None, seed: int = 0, image_tower: bool = True) -> ClipTeacher:
    """Build ``spec.model_name`` with the tag's activation; load ``weights`` (a file) or use seeded random weights.

    ``image_tower=False`` builds the text tower only (E_T), for when the distilled student is E_I.
    """
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
    if not image_tower:
        model.visual = None  # after the seeded init, so the text tower's random weights do not change
    if weights is None:
        return ClipTeacher(model, spec, source=f"random (seed {seed})")
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(f"CLIP weights file not found: {path}")
    try:
        load_checkpoint_into(model, path)
    except Exception as err:  # safetensors/pickle/shape errors all mean the same thing to the user
        raise WeightsError(
            f"cannot load CLIP weights {path} for {spec.model_name} ({one_line(err)}); the file is corrupt or for another "
            f"model: re-download it with `{command('weights', 'download', spec.local_file.name)}`"
        ) from None
    return ClipTeacher(model, spec, source=str(path))


@torch.no_grad()
def load_checkpoint_into(model: nn.Module, path: Path) -> None:
    """``open_clip.load_checkpoint`` for open_clip's own layouts, without the whole file in memory at once.

    open_clip reads the full state dict next to the model: for ViT-L/14 a 1.7 GB spike on top of the model.
    Here safetensors are read tensor by tensor and pickles (``weights_only``) memory-mapped, each tensor copied
    straight into the model. Only the model's own keys are read, so a text-only model skips the image tower.
    """
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            _copy_tensors(model, list(f.keys()), f.get_tensor)
        return
    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    state = {k.removeprefix("module."): v for k, v in state.items()}
    _copy_tensors(model, list(state), state.__getitem__)


def _copy_tensors(model: nn.Module, keys: list[str], read) -> None:
    from open_clip.factory import convert_to_custom_text_state_dict

    source = convert_to_custom_text_state_dict({k: k for k in keys})  # model key -> file key (old text layout)
    if getattr(model, "visual", None) is None:
        source = {k: v for k, v in source.items() if not k.startswith("visual.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(source))
    unexpected = sorted(set(source) - set(own) - {"logit_bias"})
    if missing or unexpected:
        raise KeyError(f"keys do not match: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for key, target in own.items():
        value = read(source[key])
        if value.numel() != target.numel():
            raise ValueError(f"{key}: shape {tuple(value.shape)} in the file, {tuple(target.shape)} in the model")
        target.copy_(value.reshape(target.shape))  # logit_scale: a scalar in some files, (1,) in others


def create_clip(preset, pretrained: str | Path | None = None, image_tower: bool = True) -> ClipTeacher:
    """The preset's CLIP teacher (``image_tower=False``: its text tower only).

    ``pretrained``: None = the preset's tag (``preset.clip_tag``; None there, or an untrained preset such as a
    rehearsal = seeded random weights with the tag's settings), a tag name of ``preset.clip_model``, or a
    checkpoint file (read with the preset's tag settings).
    """
    tag = preset.clip_tag
    weights: str | Path | None = None
    if pretrained is not None:
        if isinstance(pretrained, str) and open_clip.get_pretrained_cfg(preset.clip_model, pretrained):
            tag = pretrained
        else:
            weights = pretrained
    spec = ClipSpec.resolve(preset.clip_model, tag)
    if weights is None and tag is not None and preset.trained:
        weights = spec.find_weights()
        if weights is None:
            raise WeightsError(
                f"OpenCLIP {spec.model_name} weights ({tag}) not found ({spec.local_file}, or the Hugging Face "
                f"cache): run `{remedy('weights', preset.name)}`"
            )
    return build_clip(spec, weights, seed=preset.seed, image_tower=image_tower)


def save_clip(teacher: ClipTeacher, path: str | Path) -> Path:
    """Write the teacher's open_clip state dict (custom-text layout) as safetensors, readable by ``build_clip``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in teacher.model.state_dict().items()}
    save_file(state, str(path), metadata={"model": teacher.spec.model_name, "tag": str(teacher.spec.tag)})
    return path
