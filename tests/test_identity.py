"""Identity distance (celeblook.photo.identity): dlib's face descriptor on aligned crops of real photos."""

from __future__ import annotations

import numpy as np
from PIL import Image
from real_photos import astronaut, grace_hopper

from celeblook.photo.align import align_face
from celeblook.photo.identity import SAME_PERSON, face_descriptor, identity_distance


def crop(photo: Image.Image, size: int = 512) -> Image.Image:
    return align_face(photo, size=size).image


def test_a_photo_is_at_distance_zero_from_itself():
    result = identity_distance(crop(astronaut()), crop(astronaut()))
    assert result.distance is not None and result.distance < 1e-6 and result.same_person


def test_the_same_person_in_another_take_is_below_the_threshold():
    """Other takes of one photo: mirrored, and shrunk to 60 % with a JPEG round trip (measured 0.15-0.2)."""
    reference = crop(astronaut())
    mirrored = crop(astronaut().transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    small = astronaut().resize((307, 307), Image.Resampling.LANCZOS)
    for other in (mirrored, crop(small)):
        result = identity_distance(reference, other)
        assert 0.05 < result.distance < SAME_PERSON - 0.2, result


def test_two_different_people_are_above_the_threshold():
    """Eileen Collins and Grace Hopper (measured 0.69): dlib's threshold tells them apart."""
    result = identity_distance(crop(astronaut()), crop(grace_hopper()))
    assert result.distance > SAME_PERSON and result.same_person is False
    assert "a different person" in result.describe()


def test_a_result_without_a_face_gets_no_number_but_a_reason():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    result = identity_distance(crop(astronaut()), noise)
    assert result.distance is None and result.same_person is None and result.reason == "no face found in the result"
    assert "not measured (no face found in the result)" in result.describe()
    assert identity_distance(noise, crop(astronaut())).reason == "no face found in the photo"


def test_one_descriptor_serves_many_comparisons():
    """The photo's descriptor is computed once and compared with each result (edit variants, morph ends)."""
    photo = crop(astronaut())
    descriptor = face_descriptor(photo)
    assert descriptor.shape == (128,) and np.isfinite(descriptor).all()
    assert identity_distance(descriptor, photo).distance < 1e-6
    assert identity_distance(descriptor, crop(astronaut(), 256)).distance < 0.15  # size does not matter much
    assert identity_distance(descriptor, photo).describe() == f"identity distance 0.00: same person (below {SAME_PERSON})"
