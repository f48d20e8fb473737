"""Paste-back (celeblook.photo.paste): a result blended into the original photo through a feathered face mask."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from real_photos import ASTRONAUT_EYES, astronaut, grace_hopper

from celeblook.errors import InputError
from celeblook.photo.align import align_face
from celeblook.photo.paste import face_mask, paste_back


def full_mask(photo: Image.Image, aligned) -> np.ndarray:
    weight, window = face_mask(photo.width, photo.height, aligned)
    mask = np.zeros((photo.height, photo.width), np.float32)
    mask[window] = weight
    return mask


@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_pixels_outside_the_face_mask_are_the_photos_own(angle):
    photo = grace_hopper().rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(30, 60, 90))
    aligned = align_face(photo, size=256)
    result = Image.fromarray(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    pasted = np.asarray(paste_back(photo, aligned, result))
    mask = full_mask(photo, aligned)
    outside = mask == 0
    np.testing.assert_array_equal(pasted[outside], np.asarray(photo)[outside])  # bit for bit
    assert outside.mean() > 0.8  # the mask is the face, not the photo
    changed = np.any(pasted != np.asarray(photo), axis=2)
    assert changed[mask > 0.5].mean() > 0.95  # and inside it the result is what shows


def test_the_mask_sits_on_the_face_and_follows_its_roll():
    for angle in (0.0, 30.0):
        photo = astronaut().rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
        aligned = align_face(photo, size=256)
        mask = full_mask(photo, aligned)
        face = aligned.faces[aligned.chosen]
        eyes = np.array([face.eye_left, face.eye_right])
        for eye in eyes:
            assert mask[int(round(eye[1])), int(round(eye[0]))] == 1.0  # eyes fully from the result
        # the mask's long axis runs along the face (brow to chin), perpendicular to the eye line
        ys, xs = np.nonzero(mask > 0.5)
        cov = np.cov(np.stack([xs, ys]))
        long_axis = np.linalg.eigh(cov)[1][:, -1]
        eye_line = (eyes[1] - eyes[0]) / np.linalg.norm(eyes[1] - eyes[0])
        assert abs(long_axis @ eye_line) < 0.15


def test_pasting_the_crop_itself_gives_the_photo_back():
    photo = astronaut()
    aligned = align_face(photo, size=1024)
    pasted = np.asarray(paste_back(photo, aligned, aligned.image)).astype(int)
    mask = full_mask(photo, aligned) > 0
    assert np.abs(pasted - np.asarray(photo).astype(int))[mask].mean() < 6  # resampling twice: measured 4.4


def test_an_edit_shows_where_the_face_is():
    photo = astronaut()
    aligned = align_face(photo, size=512)
    pasted = np.asarray(paste_back(photo, aligned, ImageOps.invert(aligned.image))).astype(int)
    x, y = np.mean(ASTRONAUT_EYES, axis=0).round().astype(int)
    np.testing.assert_allclose(pasted[y, x], 255 - np.asarray(photo)[y, x].astype(int), atol=12)


def test_paste_back_refuses_a_photo_or_result_that_does_not_fit():
    photo = astronaut()
    aligned = align_face(photo, size=256)
    with pytest.raises(InputError, match="the photo the face was aligned in"):
        paste_back(photo.resize((256, 256)), aligned, aligned.image)
    with pytest.raises(InputError, match="must be square"):
        paste_back(photo, aligned, aligned.image.crop((0, 0, 256, 200)))
