"""CLIP teacher and EfficientFormer student: shapes, unit norm, seeds, gradients, prompts, tags, weight files."""

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from open_clip.transformer import QuickGELU
from PIL import Image
from safetensors.torch import save_file

from celeblook.errors import InputError, WeightsError
from celeblook.hub.weights import find
from celeblook.models.clip import (
    ClipSpec,
    PromptTruncatedWarning,
    build_clip,
    create_clip,
    save_clip,
)
from celeblook.models.student import create_student, load_student, save_student, sidecar_path
from celeblook.preprocess import OPENAI_MEAN, OPENAI_STD
from celeblook.presets import get_preset
from celeblook.remedy import remedy

TINY = get_preset("tiny")
FFHQ = get_preset("ffhq")
REPO_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
EOT = 49407


def faces(n: int = 2, size: int = 256) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    coarse = rng.uniform(0, 255, size=(n, 9, 9, 3)).astype(np.uint8)
    return [Image.fromarray(c).resize((size, size), Image.Resampling.BICUBIC) for c in coarse]


def generator_like(n: int = 2, size: int = 256, seed: int = 1) -> torch.Tensor:
    coarse = torch.rand(n, 3, 9, 9, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def assert_unit_rows(e: torch.Tensor, n: int) -> None:
    assert e.shape == (n, 768) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=-1), torch.ones(n), atol=1e-5)


@pytest.fixture(scope="module")
def teacher():
    return create_clip(TINY)


@pytest.fixture(scope="module")
def student():
    return create_student(TINY)


@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    """An empty weights/ folder and an empty Hugging Face cache."""
    import huggingface_hub.constants

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path


# ---------------------------------------------------------------- teacher, tiny preset


def test_tiny_teacher_embeds_images_tensors_and_texts(teacher):
    assert_unit_rows(teacher.embed_images(faces(3)), 3)
    assert_unit_rows(teacher.embed_tensor(generator_like(2, 512)), 2)
    assert_unit_rows(teacher.embed_texts(["a smiling woman", "an old man with a beard"]), 2)
    assert teacher.visual.image_size == 224 and teacher.context_length == 77


def test_tiny_teacher_is_frozen_and_seeded(teacher):
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    rng_before = torch.get_rng_state()
    again = create_clip(TINY)
    assert torch.equal(torch.get_rng_state(), rng_before)  # building does not consume the global RNG
    x = generator_like()
    assert torch.equal(again.embed_tensor(x), teacher.embed_tensor(x))
    other = create_clip(dataclasses.replace(TINY, seed=1))
    assert not torch.allclose(other.embed_tensor(x), teacher.embed_tensor(x))


def test_teacher_embed_tensor_is_differentiable_in_the_input(teacher):
    x = generator_like(1, 300).requires_grad_(True)
    target = teacher.embed_texts(["a face"])
    (teacher.embed_tensor(x) * target).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_teacher_photo_and_tensor_paths_agree(teacher):
    photo = faces(1, 1024)[0]
    tensor = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float() / 127.5 - 1
    cosine = (teacher.embed_images([photo]) * teacher.embed_tensor(tensor)).sum()
    assert cosine > 0.999


def test_towers_work_alone_on_the_clip_input(teacher):
    pixels = torch.randn(2, 3, 224, 224)
    assert torch.equal(teacher.visual(pixels), teacher.visual(pixels))
    assert_unit_rows(teacher.visual(pixels), 2)
    tokens, _ = teacher.tokenize(["a face", "a child"])
    assert_unit_rows(teacher.text(tokens), 2)
    assert torch.allclose(teacher.text(tokens), teacher.embed_texts(["a face", "a child"]))


def test_overlong_prompts_are_truncated_and_reported(teacher):
    fits, too_long = "a " * 75, "a " * 76  # 75 + start + end = 77 tokens: the most that fits
    tokens, truncated = teacher.tokenize(["short", fits, too_long])
    assert tokens.shape == (3, 77) and tokens.dtype == torch.int64
    assert truncated == [False, False, True]
    assert tokens[1, 76] == EOT and tokens[2, 76] == EOT
    with pytest.warns(PromptTruncatedWarning, match="truncated"):
        teacher.embed_texts([too_long])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        teacher.embed_texts([fits])


@pytest.mark.parametrize("prompts", [[""], ["   \n"], ["a face", ""], [], [None]])
def test_empty_prompts_are_input_errors(teacher, prompts):
    with pytest.raises(InputError):
        teacher.tokenize(prompts)


# ---------------------------------------------------------------- tags: normalisation and QuickGELU


@pytest.mark.parametrize(
    "tag, mean, quick_gelu",
    [
        ("laion2b_s32b_b82k", (0.5, 0.5, 0.5), False),
        ("openai", OPENAI_MEAN, True),
        ("metaclip_fullcc", OPENAI_MEAN, True),
        ("dfn2b", OPENAI_MEAN, True),
        ("dfn2b_s39b", OPENAI_MEAN, False),
        ("datacomp_xl_s13b_b90k", OPENAI_MEAN, False),
    ],
)
def test_tag_decides_normalisation_and_activation(tag, mean, quick_gelu):
    spec = ClipSpec.resolve("ViT-L-14", tag)
    assert spec.mean == pytest.approx(mean) and spec.quick_gelu is quick_gelu
    assert spec.std == pytest.approx((0.5,) * 3 if tag == "laion2b_s32b_b82k" else OPENAI_STD)


def test_default_tag_and_its_hub_files():
    spec = ClipSpec.resolve(FFHQ.clip_model, FFHQ.clip_tag)
    assert spec.tag == "laion2b_s32b_b82k"
    assert spec.hub_files() == (
        "laion/CLIP-ViT-L-14-laion2B-s32B-b82K",
        ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
    )


def test_quick_gelu_flag_reaches_the_model():
    base = ClipSpec.resolve(TINY.clip_model, None)
    gelu = build_clip(base)
    quick = build_clip(dataclasses.replace(base, quick_gelu=True))
    assert not any(isinstance(m, QuickGELU) for m in gelu.modules())
    assert any(isinstance(m, QuickGELU) for m in quick.visual.modules())
    assert any(isinstance(m, QuickGELU) for m in quick.text.modules())


def test_unknown_tag_is_a_weights_error():
    with pytest.raises(WeightsError, match="laion2b_s32b_b82k"):
        ClipSpec.resolve("ViT-L-14", "laion5b_nonsense")


@pytest.fixture(scope="module")
def vit_l_openai():
    """open_clip's real ViT-L-14 config with the openai tag's settings (QuickGELU), random weights."""
    return build_clip(ClipSpec.resolve("ViT-L-14", "openai"))


def test_real_vit_l_14_towers(vit_l_openai):
    teacher = vit_l_openai
    assert teacher.visual.mean == pytest.approx(OPENAI_MEAN) and teacher.visual.std == pytest.approx(OPENAI_STD)
    assert any(isinstance(m, QuickGELU) for m in teacher.visual.modules())
    assert sum(p.numel() for p in teacher.visual.parameters()) == pytest.approx(303.97e6, rel=1e-3)
    assert_unit_rows(teacher.embed_images(faces(1)), 1)
    tokens, truncated = teacher.tokenize(["a photo of a smiling person"])
    assert tokens.shape == (1, 77) and truncated == [False]
    assert_unit_rows(teacher.text(tokens), 1)


# ---------------------------------------------------------------- teacher weight files


def test_local_file_round_trip(teacher, tmp_path):
    path = save_clip(teacher, tmp_path / "tiny_clip.safetensors")
    loaded = create_clip(TINY, pretrained=path)
    assert loaded.source == str(path)
    x = generator_like()
    assert torch.equal(loaded.embed_tensor(x), teacher.embed_tensor(x))
    assert torch.equal(loaded.embed_texts(["a face"]), teacher.embed_texts(["a face"]))
    other_seed = build_clip(ClipSpec.resolve(TINY.clip_model, None), weights=path, seed=5)
    assert torch.equal(other_seed.embed_tensor(x), teacher.embed_tensor(x))  # the file wins over the seed


def test_text_only_teacher_reads_the_same_file_without_the_image_tower(teacher, tmp_path):
    path = save_clip(teacher, tmp_path / "tiny_clip.safetensors")
    text_only = create_clip(TINY, pretrained=path, image_tower=False)
    assert text_only.visual is None and not any(k.startswith("visual.") for k in text_only.model.state_dict())
    assert torch.equal(text_only.embed_texts(["a face", "a smiling old man"]), teacher.embed_texts(["a face", "a smiling old man"]))
    seeded = create_clip(TINY, image_tower=False)  # seeded weights: the same text tower as the full teacher's
    assert torch.equal(seeded.embed_texts(["a face"]), teacher.embed_texts(["a face"]))
    with pytest.raises(WeightsError, match="without its image tower"):
        text_only.embed_tensor(generator_like())


def test_open_clips_original_pickle_layout_loads(teacher, tmp_path):
    """Hub checkpoints (open_clip_pytorch_model.bin) keep the text tower at the top level, not under ``text.``."""
    text_keys = ("text_projection", "positional_embedding", "token_embedding", "transformer", "ln_final")
    state = {}
    for key, value in teacher.model.state_dict().items():
        inner = key.removeprefix("text.")
        state[inner if key.startswith("text.") and inner.startswith(text_keys) else key] = value.clone()
    assert "positional_embedding" in state and "text.positional_embedding" not in state
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    loaded = create_clip(TINY, pretrained=path)
    x = generator_like()
    assert torch.equal(loaded.embed_tensor(x), teacher.embed_tensor(x))
    assert torch.equal(loaded.embed_texts(["a face"]), teacher.embed_texts(["a face"]))


def test_missing_weights_name_the_download_command(empty_weights):
    with pytest.raises(WeightsError) as err:
        create_clip(FFHQ)
    file = "open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors"
    assert file in str(err.value) and str(err.value).endswith(f"run `{remedy('weights', 'ffhq')}`")
    assert find(file, root=REPO_WEIGHTS).name == file  # the command names a real manifest entry
    assert "\n" not in str(err.value)
    with pytest.raises(WeightsError, match="not found"):
        create_clip(TINY, pretrained=empty_weights / "nope.safetensors")


def test_weights_are_found_in_weights_dir_then_the_hub_cache(empty_weights):
    spec = ClipSpec.resolve("ViT-L-14", "laion2b_s32b_b82k")
    assert spec.find_weights() is None
    # the Hugging Face cache layout: models--org--repo/{refs/main, snapshots/<commit>/<file>}
    repo = empty_weights / "hub" / "models--laion--CLIP-ViT-L-14-laion2B-s32B-b82K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    cached = repo / "snapshots" / "abc123" / "open_clip_pytorch_model.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert spec.find_weights() == cached
    spec.local_file.parent.mkdir(parents=True)
    spec.local_file.write_bytes(b"x")
    assert spec.find_weights() == spec.local_file
    assert spec.local_file.name == "open_clip_ViT-L-14_laion2b_s32b_b82k.safetensors"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_or_mismatched_weights_are_weights_errors(teacher, tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00not a safetensors file" * 10)
    with pytest.raises(WeightsError, match="corrupt") as err:
        create_clip(TINY, pretrained=garbage)
    assert "re-download it with `celeblook weights download " in str(err.value)
    state = {k: v.contiguous() for k, v in teacher.model.state_dict().items() if not k.startswith("text.")}
    partial = tmp_path / "image_only.safetensors"
    save_file(state, str(partial))
    with pytest.raises(WeightsError, match="corrupt or for another model"):
        create_clip(TINY, pretrained=partial)
    pickle = tmp_path / "garbage.bin"
    pickle.write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(WeightsError):
        create_clip(TINY, pretrained=pickle)


# ---------------------------------------------------------------- student


def test_tiny_student_shares_the_teacher_interface(student, teacher):
    assert (student.mean, student.std) == (teacher.visual.mean, teacher.visual.std)
    assert_unit_rows(student.embed_images(faces(3)), 3)
    assert_unit_rows(student.embed_tensor(generator_like(2, 1024)), 2)
    assert_unit_rows(student(torch.randn(2, 3, 224, 224)), 2)
    assert not student.training and not any(p.requires_grad for p in student.parameters())


def test_tiny_student_is_seeded_and_differentiable(student):
    rng_before = torch.get_rng_state()
    again = create_student(TINY)
    assert torch.equal(torch.get_rng_state(), rng_before)
    x = generator_like()
    assert torch.equal(again.embed_tensor(x), student.embed_tensor(x))
    other = create_student(dataclasses.replace(TINY, seed=3))
    assert not torch.allclose(other.embed_tensor(x), student.embed_tensor(x))
    x.requires_grad_(True)
    student.embed_tensor(x)[:, 0].sum().backward()
    assert x.grad.abs().sum() > 0


def test_student_photo_and_tensor_paths_agree(student):
    photo = faces(1, 1024)[0]
    tensor = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float() / 127.5 - 1
    assert (student.embed_images([photo]) * student.embed_tensor(tensor)).sum() > 0.999


def test_student_runs_at_224_only(student):
    with pytest.raises(InputError, match="224"):
        student(torch.zeros(1, 3, 256, 256))


def test_ffhq_default_student_builds_at_224():
    ffhq_random = dataclasses.replace(FFHQ, trained=False)
    encoder = create_student(ffhq_random)
    assert encoder.config.variant == FFHQ.student
    assert encoder.mean == (0.5, 0.5, 0.5)  # laion2b teacher input
    assert_unit_rows(encoder(torch.randn(1, 3, 224, 224)), 1)


def test_student_checkpoint_round_trip(student, tmp_path):
    path = save_student(student, tmp_path / "student_tiny.safetensors", provenance={"steps": 0})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["config"]["variant"] == TINY.student and len(sidecar["sha256"]) == 64
    assert sidecar["config"]["backbone_kwargs"]["depths"] == [1, 1, 1, 1]
    loaded = create_student(TINY, checkpoint=path)
    x = generator_like()
    assert torch.equal(loaded.embed_tensor(x), student.embed_tensor(x))
    assert loaded.config == student.config


def test_trained_preset_without_student_names_the_train_command(empty_weights):
    with pytest.raises(WeightsError) as err:
        create_student(FFHQ)
    assert remedy("student", "ffhq") in str(err.value) and "student_efficientformer" in str(err.value)


def test_corrupt_student_files_are_weights_errors(student, tmp_path):
    path = save_student(student, tmp_path / "s.safetensors")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt"):
        load_student(path)
    sidecar_path(path).write_text("{not json")
    with pytest.raises(WeightsError, match="sidecar"):
        load_student(path)
    sidecar_path(path).unlink()
    with pytest.raises(WeightsError, match="no sidecar"):
        load_student(path)
    with pytest.raises(WeightsError, match="not found"):
        load_student(tmp_path / "missing.safetensors")


def test_student_from_another_teacher_is_refused(student, tmp_path):
    path = save_student(student, tmp_path / "s.safetensors")
    other_teacher = dataclasses.replace(TINY, clip_model="ViT-L-14", clip_tag="openai")
    with pytest.raises(WeightsError, match="distilled from"):
        create_student(other_teacher, checkpoint=path)


def test_imagenet_init_from_a_local_timm_file(tmp_path):
    classifier = timm.create_model(TINY.student, num_classes=1000, **TINY.student_kwargs)
    path = tmp_path / "in1k.safetensors"
    save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, str(path))
    fresh = create_student(TINY, init_imagenet=path)
    backbone = fresh.backbone.state_dict()
    assert "head.weight" not in backbone
    assert all(torch.equal(backbone[k], v) for k, v in classifier.state_dict().items() if k in backbone)
    assert len(backbone) > 10
    with pytest.raises(WeightsError, match="not found"):
        create_student(TINY, init_imagenet=tmp_path / "missing.safetensors")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"stem.conv1.weight": torch.zeros(3, 3, 3, 3)}, str(wrong))
    with pytest.raises(WeightsError, match="cannot load ImageNet weights"):
        create_student(TINY, init_imagenet=wrong)
