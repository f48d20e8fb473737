"""Identity score: is the face in a result still the person in the photo?

dlib's ResNet face descriptor (public domain; ``celeblook.photo.dlib_models`` finds
``dlib_face_recognition_resnet_model_v1.dat``) maps a face to 128 numbers; the Euclidean distance between two faces'
descriptors is below ``SAME_PERSON`` (dlib's published threshold, 99.38 % on LFW) when they are the same
person. Faces are found with ``celeblook.photo.align``'s detector and landmarks; a result in which no face is
found gets no distance, with the reason, rather than a number that means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import dlib
import numpy as np
from PIL import Image

from .align import detect_faces, landmark_model
from .dlib_models import DESCRIPTOR, model_path

SAME_PERSON = 0.6  # dlib's threshold: descriptor distances below it are the same person
DESCRIBE_SIDE = 512  # faces are described in a copy this long: the descriptor reads a 150 px chip
FIND_SIDE = 256  # and found in one this long (an aligned face fills half of it)
CHIP_PADDING = 0.25  # dlib's default context around the face in that chip


@cache
def _describer() -> dlib.face_recognition_model_v1:
    return dlib.face_recognition_model_v1(model_path(DESCRIPTOR))


def face_descriptor(image: Image.Image) -> np.ndarray | None:
    """The 128-d descriptor of the largest face in the image, or None when no face is found."""
    image = _at_most(image.convert("RGB"), DESCRIBE_SIDE)
    small = _at_most(image, FIND_SIDE)
    faces = detect_faces(small)
    if not faces:
        return None
    rgb = np.ascontiguousarray(np.asarray(image))
    rect = dlib.rectangle(*(int(round(v * image.width / small.width)) for v in faces[0].box))
    shape = landmark_model()(rgb, rect)
    return np.asarray(_describer().compute_face_descriptor(rgb, shape, 0, CHIP_PADDING), np.float64)


def _at_most(image: Image.Image, side: int) -> Image.Image:
    scale = side / max(image.size)
    return image if scale >= 1.0 else image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class IdentityDistance:
    distance: float | None  # None when a face was missing (see reason)
    reason: str = ""

    @property
    def same_person(self) -> bool | None:
        return None if self.distance is None else self.distance < SAME_PERSON

    def describe(self) -> str:
        """One line for people, e.g. "identity distance 0.31: same person (below 0.6)"."""
        if self.distance is None:
            return f"identity distance: not measured ({self.reason})"
        verdict = "same person" if self.same_person else "a different person"
        return f"identity distance {self.distance:.2f}: {verdict} ({'below' if self.same_person else 'not below'} {SAME_PERSON})"


Face = Image.Image | np.ndarray  # an image, or a descriptor already computed (to compare one photo with many results)


def identity_distance(a: Face, b: Face) -> IdentityDistance:
    """Descriptor distance between the largest faces of two images (e.g. the aligned photo and a result)."""
    descriptors = []
    for face, which in ((a, "the photo"), (b, "the result")):
        descriptor = face if isinstance(face, np.ndarray) else face_descriptor(face)
        if descriptor is None:
            return IdentityDistance(None, f"no face found in {which}")
        descriptors.append(descriptor)
    return IdentityDistance(float(np.linalg.norm(descriptors[0] - descriptors[1])))
