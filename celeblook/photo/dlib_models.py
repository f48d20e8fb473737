"""Where dlib's two model files are found: fetched into the weights dir, or in the face-recognition-models package.

The runtime install does not depend on face-recognition-models (126 MB, 100 MB of it a 68-point model nothing here
loads): the app's first start (``celeblook.hub.first_run``) or ``celeblook weights download`` fetches the two
files it uses from dlib's own model repository into ``weights_dir()/dlib/``, checked against the sha256 in the
weights manifest. The full install keeps that package, whose copies are used where nothing was fetched.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import WeightsError
from ..files import weights_dir
from ..remedy import command

LANDMARKS = "shape_predictor_5_face_landmarks.dat"  # the alignment's 5 points (celeblook.photo.align)
DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"  # the identity descriptor (celeblook.photo.identity)
SIZES = {LANDMARKS: 9_150_489, DESCRIPTOR: 22_466_066}  # bytes, as the weights manifest records them
FOLDER = "dlib"  # under the weights dir; the manifest's names are "dlib/<file>"
PACKAGE = "face_recognition_models"


def manifest_name(name: str) -> str:
    """The file's name in the weights manifest (and under the weights dir)."""
    return f"{FOLDER}/{name}"


def packaged_copy(name: str) -> Path | None:
    """The face-recognition-models package's copy of a dlib model file, or None where the package is not installed.

    Found by path: the package's ``__init__`` imports ``pkg_resources``, which new setuptools no longer has.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    return path if path.is_file() else None


def model_path(name: str) -> str:
    """The path of one of dlib's model files that the app uses (``LANDMARKS``, ``DESCRIPTOR``): the fetched copy in
    the weights dir, else the package's; a one-line WeightsError with the command that fetches it when neither is
    there, or when the fetched one is not the size the manifest gives (dlib would fail on it without saying why)."""
    fetched = weights_dir() / manifest_name(name)
    fix = command("weights", "download", manifest_name(name))
    if fetched.is_file():
        if fetched.stat().st_size != SIZES[name]:
            raise WeightsError(f"dlib's {name} is damaged ({fetched}: {fetched.stat().st_size:,} bytes, expected "
                               f"{SIZES[name]:,}): delete it and run `{fix}`")
        return str(fetched)
    packaged = packaged_copy(name)
    if packaged is None:
        raise WeightsError(f"dlib's {name} is missing ({fetched}): run `{fix}` (the app fetches it when it starts)")
    return str(packaged)
