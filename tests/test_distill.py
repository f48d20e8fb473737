"""Distilling the tiny CLIP image tower into the tiny EfficientFormer student (celeblook.training.encoder).

Measured on this shared 2-core CPU (40 steps of batch 8 at lr 1e-3, 16 held-out generated faces):
cosine to teacher 0.007 -> 0.468 / 0.824 / 0.680 for seeds 0 / 1 / 2, ~13 s each.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from celeblook.cli import main
from celeblook.factory import create_generator
from celeblook.models.clip import create_clip
from celeblook.models.student import create_student, load_student
from celeblook.presets import get_preset
from celeblook.training.encoder import (
    CHECKPOINT_NAME,
    HELD_OUT_SEED_OFFSET,
    EncoderTrainConfig,
    cosine_to_teacher,
    generated_faces,
    train_encoder,
)


@pytest.fixture(scope="module")
def models():
    preset = get_preset("tiny")
    return preset, create_generator(preset), create_clip(preset)


def test_distillation_raises_cosine_to_teacher_on_held_out_faces(models, tmp_path):
    preset, g, clip = models
    config = EncoderTrainConfig.from_preset("tiny", steps=40, batch=8, lr=1e-3, seed=0, n_eval=16, size=64)
    metrics = train_encoder(create_student(preset), clip.visual, g, config, tmp_path, show_progress=False)
    # an untrained student's embedding is unrelated to the teacher's (cos ~0.007); measured after: 0.47-0.82
    assert abs(metrics["cosine_to_teacher_initial"]) < 0.1
    assert metrics["cosine_to_teacher"] > metrics["cosine_to_teacher_initial"] + 0.3, metrics
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["cosine_to_teacher"] == pytest.approx(metrics["cosine_to_teacher"])
    # the written student is the trained one: it reproduces the metric on the same held-out faces
    student = load_student(tmp_path / f"student_{preset.student}.safetensors")
    held = generated_faces(g, 16, config.psi, 64, torch.Generator().manual_seed(HELD_OUT_SEED_OFFSET))
    assert cosine_to_teacher(student, clip.visual, held) == pytest.approx(metrics["cosine_to_teacher"], abs=1e-5)


def test_resume_reproduces_uninterrupted_run(models, tmp_path):
    preset, g, clip = models

    def run(out, steps, resume=False):
        student = create_student(preset)
        config = EncoderTrainConfig.from_preset("tiny", steps=steps, batch=2, seed=3, n_eval=2, size=64, checkpoint_every=2)
        train_encoder(student, clip.visual, g, config, out, resume=resume, show_progress=False)
        return student.state_dict()

    straight = run(tmp_path / "a", 4)
    run(tmp_path / "b", 2)
    assert (tmp_path / "b" / CHECKPOINT_NAME).exists()
    resumed = run(tmp_path / "b", 4, resume=True)
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_cli_trains_with_real_photos(models, tmp_path):
    _, g, _ = models
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):  # every 5th photo is held out: one here
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    out = tmp_path / "run"
    code = main(["train", "encoder", "--preset", "tiny", "--out", str(out), "--steps", "2", "--batch", "4",
                 "--real-dir", str(photos), "--device", "cpu"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_heldout_real"] == 1
    # the reported number is the saved student's cosine to the teacher on the held-out photo, recomputed here
    from celeblook.training.encoder import cosine_to_teacher, load_photo

    student = load_student(out / "student_efficientformer_l1.safetensors")
    held = load_photo(photos / "4.png", EncoderTrainConfig.from_preset("tiny").size)[None]  # the size the job used
    expected = cosine_to_teacher(student, create_clip(get_preset("tiny")).visual, held)
    assert metrics["cosine_to_teacher_real"] == pytest.approx(expected, abs=1e-5)


def test_cli_rejects_a_missing_photo_folder(tmp_path, capsys):
    code = main(["train", "encoder", "--preset", "tiny", "--out", str(tmp_path / "run"), "--steps", "1",
                 "--real-dir", str(tmp_path / "nope")])
    assert code == 2 and "is not a folder" in capsys.readouterr().err
