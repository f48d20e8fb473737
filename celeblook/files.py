"""Where our files live, and small helpers shared by every writer and checker of weights, exports and outputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

WEIGHTS_ENV = "CELEBLOOK_WEIGHTS"


def weights_dir() -> Path:
    """Where downloaded, converted and trained weights live (``weights/`` of the checkout by default)."""
    return Path(os.environ.get(WEIGHTS_ENV, Path(__file__).resolve().parent.parent / "weights"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (weights can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
