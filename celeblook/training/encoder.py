"""Distilling the CLIP image tower into the EfficientFormer student (``python -m celeblook train encoder``).

Data: generated faces (seeded z -> truncated W+ -> G's 256 px exit) and, optionally, a folder of real photos
(half of each batch when given). Every image is augmented (random resized crop, horizontal flip, colour
jitter, JPEG re-encoding; all drawn from one seeded torch.Generator), then goes through the shared CLIP
preprocessing (celeblook.models.image_encoder.tensor_to_clip), so teacher and student see the same 224 px input.

Loss on unit-norm embeddings: (1 - cos(s, t)) + MSE(s, t). For unit vectors the MSE is 2(1 - cos)/dim, so it
adds a small, linear-in-error term beside the cosine; it is kept because the brief names both.

Metric (OUT/metrics.json): mean cosine to the teacher on held-out generated faces (latents from their own
seed stream, no augmentation) and, with ``--real-dir``, on held-out real photos (every 5th file in name
order), before (``*_initial``) and after training. The student is written as ``OUT/student_<variant>.safetensors``
+ JSON sidecar (celeblook.models.student.save_student; copy it into weights/ for the pipeline to use it).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from PIL import Image
from torch import Tensor

from ..errors import InputError
from ..models.image_encoder import tensor_to_clip
from ..preprocess import photo_to_clip, to_rgb
from ..presets import EncoderTrainConfig
from .common import MetricsLog, autocast, progress_bar, resume_from, rng_state, save_checkpoint

CHECKPOINT_NAME = "encoder_checkpoint.safetensors"
HELD_OUT_SEED_OFFSET = 1_000_003
HELD_OUT_EVERY = 5  # every 5th real photo (sorted by name) is held out
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class FaceAugment:
    """Seeded augmentation of a batch in [-1,1] (N,3,H,W): resized crop, flip, colour jitter, JPEG."""

    def __init__(self, crop_scale=(0.6, 1.0), jitter: float = 0.2, jpeg_prob: float = 0.5, jpeg_quality=(30, 95)):
        self.crop_scale, self.jitter, self.jpeg_prob, self.jpeg_quality = crop_scale, jitter, jpeg_prob, jpeg_quality

    def __call__(self, x: Tensor, rng: torch.Generator) -> Tensor:
        return torch.stack([self.one(image, rng) for image in x])

    def one(self, image: Tensor, rng: torch.Generator) -> Tensor:
        u = lambda lo, hi: lo + (hi - lo) * torch.rand((), generator=rng).item()  # noqa: E731
        _, h, w = image.shape
        area = u(*self.crop_scale) * h * w
        ratio = float(np.exp(u(np.log(3 / 4), np.log(4 / 3))))
        ch, cw = min(h, round((area / ratio) ** 0.5)), min(w, round((area * ratio) ** 0.5))
        top, left = int(u(0, h - ch + 1)), int(u(0, w - cw + 1))
        image = TF.resized_crop(image, top, left, ch, cw, [h, w], antialias=True)
        if u(0, 1) < 0.5:
            image = TF.horizontal_flip(image)
        rgb = ((image + 1) / 2).clamp(0, 1)
        j = self.jitter
        rgb = TF.adjust_brightness(rgb, u(1 - j, 1 + j))
        rgb = TF.adjust_contrast(rgb, u(1 - j, 1 + j))
        rgb = TF.adjust_saturation(rgb, u(1 - j, 1 + j))
        if u(0, 1) < self.jpeg_prob:
            rgb = jpeg_roundtrip(rgb, int(u(*self.jpeg_quality)))
        return rgb * 2 - 1


def jpeg_roundtrip(rgb: Tensor, quality: int) -> Tensor:
    """(3,H,W) in [0,1] -> the same after JPEG encoding at ``quality`` (Pillow)."""
    array = (rgb.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(decoded).permute(2, 0, 1)


def real_photo_split(folder: Path) -> tuple[list[Path], list[Path]]:
    """(train, held_out) image files of ``folder`` in name order; every 5th is held out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"--real-dir {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise InputError(f"--real-dir {folder} holds {len(files)} image(s); need at least 2 (one is held out)")
    held = [p for i, p in enumerate(files) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1] or files[-1:]
    return [p for p in files if p not in held], held


def load_photo(path: Path, size: int) -> Tensor:
    """A photo as (3,size,size) in [-1,1]: shortest side resized to ``size``, centre crop (as the CLIP crop)."""
    try:
        image = to_rgb(Image.open(path))
    except OSError as err:
        raise InputError(f"cannot read image {path}: {err}") from None
    return torch.from_numpy(photo_to_clip(image, (0.5,) * 3, (0.5,) * 3, size))  # mean/std 0.5 = the [-1,1] range


def generated_faces(generator, n: int, psi: float, size: int, rng: torch.Generator) -> Tensor:
    with torch.no_grad():
        z = torch.randn(n, generator.config.style_dim, generator=rng).to(generator.w_avg.device)
        return generator(generator.z_to_wplus(z, psi), size=size).clamp(-1, 1)


@torch.no_grad()
def cosine_to_teacher(student, teacher_tower, images: Tensor, batch: int = 16) -> float:
    """Mean cos(student, teacher) over images in [-1,1] (no augmentation)."""
    was_training = student.training
    student.eval()
    cosines = []
    for chunk in images.split(batch):
        pixels = tensor_to_clip(chunk, student.mean, student.std)
        cosines.append((student(pixels) * teacher_tower(pixels)).sum(-1))
    student.train(was_training)
    return torch.cat(cosines).mean().item()


def distillation_loss(student_embedding: Tensor, teacher_embedding: Tensor) -> Tensor:
    cos = (student_embedding * teacher_embedding).sum(-1)
    return (1 - cos).mean() + F.mse_loss(student_embedding, teacher_embedding)


def train_encoder(
    student, teacher_tower, generator, config: EncoderTrainConfig, out: Path, real_dir: Path | None = None,
    resume: bool = False, show_progress: bool = True, provenance: dict | None = None,
) -> dict[str, float]:
    """Distils ``teacher_tower`` (CLIP input -> unit embedding) into ``student`` in place; returns the metrics."""
    from ..models.student import save_student

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (student.mean, student.std) != (teacher_tower.mean, teacher_tower.std):
        raise InputError("student and teacher normalise their input differently: build the student from the same preset")
    real_train, real_held = real_photo_split(real_dir) if real_dir is not None else ([], [])
    held_rng = torch.Generator().manual_seed(config.seed + HELD_OUT_SEED_OFFSET)
    held_generated = generated_faces(generator, config.n_eval, config.psi, config.size, held_rng)
    held_real = torch.stack([load_photo(p, config.size) for p in real_held[: config.n_eval]]) if real_held else None
    held_real = held_real.to(held_generated.device) if held_real is not None else None

    rng = torch.Generator().manual_seed(config.seed)
    student.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=0.01)
    augment = FaceAugment()
    checkpoint = out / CHECKPOINT_NAME
    start, metrics = 0, {}
    if resume:
        state = resume_from(checkpoint, {"model": student, "optimizer": optimizer}, {"data": rng})
        start, metrics = state["step"], state["metrics"]
    else:
        metrics["cosine_to_teacher_initial"] = cosine_to_teacher(student, teacher_tower, held_generated)
        if held_real is not None:
            metrics["cosine_to_teacher_real_initial"] = cosine_to_teacher(student, teacher_tower, held_real)

    log = MetricsLog(out / "metrics.jsonl")
    bar = progress_bar(config.steps, start, "encoder", show_progress)
    n_real = config.batch // 2 if real_train else 0
    for step in range(start, config.steps):
        images = generated_faces(generator, config.batch - n_real, config.psi, config.size, rng)
        if n_real:
            picks = torch.randint(len(real_train), (n_real,), generator=rng).tolist()
            photos = torch.stack([load_photo(real_train[i], config.size) for i in picks])
            images = torch.cat([images, photos.to(images.device)])
        pixels = tensor_to_clip(augment(images.cpu(), rng).to(images.device), student.mean, student.std)
        with torch.no_grad(), autocast(pixels.device, config.amp):
            target = teacher_tower(pixels).float()
        with autocast(pixels.device, config.amp):
            loss = distillation_loss(student(pixels).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        log.write(step + 1, loss=loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(checkpoint, {
                "model": student.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": rng_state({"data": rng}), "step": step + 1, "metrics": metrics,
            })
    bar.close()
    student.eval().requires_grad_(False)
    metrics["cosine_to_teacher"] = cosine_to_teacher(student, teacher_tower, held_generated)
    if held_real is not None:
        metrics["cosine_to_teacher_real"] = cosine_to_teacher(student, teacher_tower, held_real)
    metrics.update(steps=config.steps, n_heldout_generated=config.n_eval, n_heldout_real=len(real_held[: config.n_eval]))
    save_student(student, out / f"student_{student.config.variant}.safetensors", {
        **(provenance or {}), "train_config": asdict(config), "real_dir": str(real_dir) if real_dir else None,
        **metrics,
    })
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def encoder_line(metrics: dict) -> str:
    """The held-out figures of a finished run (``train encoder`` and ``train all`` print it)."""
    return (f"cosine to the teacher on held-out generated faces: {metrics['cosine_to_teacher_initial']:.4f} -> "
            f"{metrics['cosine_to_teacher']:.4f}")


def encoder_job(
    preset, out: Path, config: EncoderTrainConfig, real_dir: Path | None = None, init_imagenet: Path | None = None,
    resume: bool = False, show_progress: bool = True,
) -> dict[str, float]:
    """``python -m celeblook train encoder``: distils the preset's CLIP image tower into a fresh student
    (ImageNet-initialised backbone when ``init_imagenet`` is given, else seeded random weights)."""
    from ..factory import create_generator
    from ..models.clip import create_clip
    from ..models.image_encoder import seeded_init
    from ..models.student import StudentConfig, StudentEncoder
    from .common import pick_device

    target_device = pick_device(config.device)
    generator = create_generator(preset).to(target_device)
    teacher = create_clip(preset).to(target_device)
    with seeded_init(config.seed):
        student = StudentEncoder(StudentConfig.from_preset(preset), imagenet_file=init_imagenet).to(target_device)
    provenance = {"preset": preset.name, "teacher": teacher.source,
                  "init": str(init_imagenet) if init_imagenet else f"random (seed {config.seed})"}
    return train_encoder(student, teacher.visual, generator, config, out, real_dir, resume, show_progress, provenance)
