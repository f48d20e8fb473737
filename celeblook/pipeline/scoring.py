"""How a result is judged: CLIP scores of an edit, and the identity distance of a face to the person it came from
(the photo's, or the unedited face's), with the face pasted back into the photo."""

from __future__ import annotations

import numpy as np

from ..engine import cosine
from ..photo.aligned import AlignedPhoto
from ..photo.identity import IdentityDistance, face_descriptor, identity_distance
from ..photo.paste import paste_back
from .results import Face, Result, Variant


def score_edit(face: Face, embedding: np.ndarray, reference: np.ndarray, target_embedding: np.ndarray) -> None:
    """An edit's CLIP similarity to the unedited face (``reference``) and its text score, from its embedding."""
    face.scores["clip_similarity"] = cosine(embedding, reference)
    face.scores["text_score"] = cosine(embedding, target_embedding)


def identity_of(reference: np.ndarray | None, face: Face, of: str = "the photo") -> IdentityDistance:
    """How far the person in ``face`` is from ``reference`` (a face descriptor); also in its scores."""
    found = identity_distance(reference, face.image) if reference is not None else IdentityDistance(
        None, f"no face found in {of}")
    if found.distance is not None:
        face.scores["identity_distance"] = found.distance
    return found


def in_photo(face: Face, photo: AlignedPhoto | None, reference: np.ndarray | None = None) -> None:
    """The face's identity against the photo's person (or ``reference``, the unedited face's descriptor, when
    there is no photo), and the face pasted back into the photo."""
    if photo is None:
        face.identity = identity_of(reference, face, "the unedited face")
        return
    face.identity = identity_of(photo.descriptor, face)
    face.pasted = paste_back(photo.photo, photo.aligned, face.image)


def judge_variants(origin: Result, variants: list[Variant]) -> None:
    """Each edit against the person in the photo (or, for faces made here, the unedited face)."""
    reference = face_descriptor(origin.faces[0].image) if origin.photo is None else None
    for variant in variants:
        if variant.face is not None:
            in_photo(variant.face, origin.photo, reference)
