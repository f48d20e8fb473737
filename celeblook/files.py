"""Where our files live, and small helpers shared by every writer and checker of weights, exports and outputs."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

from .errors import InputError
from .install import CHECKOUT, from_checkout

WEIGHTS_ENV = "CELEBLOOK_WEIGHTS"


def weights_dir() -> Path:
    """Where downloaded, converted and trained weights live: ``$CELEBLOOK_WEIGHTS``, else ``weights/`` of the
    checkout, else (an installed wheel, whose folder is not for data) ``celeblook/weights`` in the user's cache."""
    if WEIGHTS_ENV in os.environ:
        return Path(os.environ[WEIGHTS_ENV])
    if from_checkout():
        return CHECKOUT / "weights"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "celeblook" / "weights"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (weights can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a file. The temporary name is
    unique to the call: two threads writing the same path never write into one temporary file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) for results, or say in one line why it cannot be."""
    if path.exists() and not path.is_dir():
        raise InputError(f"cannot write results to {path}: it exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output directory {path}: {err.strerror or err}") from None
    return path
