"""Where our files live, and small helpers shared by every writer and checker of weights, exports and outputs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
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
    """Create ``path`` (and its parents) for results and check that files can be made in it (a read-only folder
    is found before any work, not after it), or say in one line why not."""
    if path.exists() and not path.is_dir():
        raise InputError(f"cannot write results to {path}: it exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output directory {path}: {err.strerror or err}") from None
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".celeblook-probe-", dir=path))
    except OSError as err:
        raise InputError(f"cannot write results to {path}: {err.strerror or err}") from None
    return path


def output_file(path: Path) -> Path:
    """Check, before any work, that the file ``path`` can be written: its folder is made and writable, and
    ``path`` is not a folder."""
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder, not a file")
    output_dir(path.parent)
    return path


def write_output(path: Path, data: bytes) -> None:
    """``atomic_write_bytes`` for a result: a failure (a full disk, a read-only folder) is one line naming the file."""
    try:
        atomic_write_bytes(path, data)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None


@contextlib.contextmanager
def staged_output(out: Path) -> Iterator[Path]:
    """A hidden folder inside ``out`` for one command's results, which are moved into ``out`` when the block ends
    without an error and deleted when it ends with one: a failure half way (a full disk, a result's name taken by
    a folder) leaves none of them. ``out`` is checked when the block starts (``output_dir``; folders this block
    made are removed again on failure); an OSError while writing becomes one line naming the file and the reason.
    Commands write ``stage / NAME`` and report ``out / NAME``."""
    made = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    stage: Path | None = None
    try:
        output_dir(out)
        stage = Path(tempfile.mkdtemp(prefix=".celeblook-", suffix=".tmp", dir=out))
        yield stage
        _move_into(stage, out)
    except BaseException as err:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        for folder in made:
            try:
                folder.rmdir()
            except OSError:  # not empty, or not ours to remove any more
                break
        if isinstance(err, OSError) and err.errno is not None:
            _raise_write_error(err, stage, out)
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _raise_write_error(err: OSError, stage: Path | None, out: Path) -> None:
    """One line for a failed write of a result (without a file name: a write that failed part way, as on a full
    disk); an OSError about a file elsewhere (an input) is left as it is."""
    if not err.filename or stage is None:
        raise InputError(f"cannot write results to {out}: {err.strerror}") from None
    name = Path(os.fsdecode(err.filename))
    if name.is_relative_to(stage):
        name = out / name.relative_to(stage)
    if name.is_relative_to(out):
        raise InputError(f"cannot write {name}: {err.strerror}") from None


def _move_into(stage: Path, out: Path) -> None:
    """Every file under ``stage`` to the same place under ``out``; every name is checked before the first move."""
    files = sorted(path for path in stage.rglob("*") if not path.is_dir())
    targets = [out / path.relative_to(stage) for path in files]
    for target in targets:
        if target.is_dir():
            raise InputError(f"cannot write {target}: a folder has that name")
        for folder in target.relative_to(out).parents[:-1]:
            if (out / folder).exists() and not (out / folder).is_dir():
                raise InputError(f"cannot write {target}: {out / folder} is not a folder")
    for path, target in zip(files, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
