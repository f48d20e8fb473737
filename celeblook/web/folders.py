"""The folders ``web build`` reads and writes: files opened never through a link, and the marker that makes a folder
a build's, so that a build replaces only what an earlier build made and never deletes anything else."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from pathlib import Path
from typing import BinaryIO

from ..errors import CelebError, InputError

BUILD_MARK = ".celeblook-build"  # written last into each folder a build makes: only such folders are replaced
MARK_FORMAT = "celeblook-build/1"


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, never through a symbolic link (O_NOFOLLOW) nor waiting on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    file = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        file.close()
        raise InputError(f"{path} is not a regular file")
    return file


def contents(folder: Path) -> set[str]:
    """Every file, link and folder under ``folder`` (relative, POSIX); links are never followed."""
    found = set()
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        found.update((base / name).as_posix() for name in (*dirs, *files))
    return found


def write_mark(folder: Path, kind: str) -> None:
    """The marker that makes ``folder`` replaceable by a later build: what kind of folder it is and what it holds."""
    mark = {"format": MARK_FORMAT, "kind": kind, "contents": sorted(contents(folder))}
    (folder / BUILD_MARK).write_text(json.dumps(mark, indent=0))


def read_mark(folder: Path, kind: str) -> set[str] | None:
    """What a previous build of this kind wrote into ``folder``; None when it has no valid marker of that kind."""
    try:
        with open_regular(folder / BUILD_MARK) as f:
            mark = json.loads(f.read())
    except (OSError, ValueError, CelebError):
        return None
    if not isinstance(mark, dict) or mark.get("format") != MARK_FORMAT or mark.get("kind") != kind:
        return None
    contents = mark.get("contents")
    if not isinstance(contents, list):
        return None
    return {c for c in contents if isinstance(c, str)} | {BUILD_MARK}


def replaceable(folder: Path, kind: str) -> bool:
    """Whether ``folder`` exists, as an empty folder or a previous build of this kind holding only what it wrote;
    anything else is refused (InputError), so a build never deletes what it did not make."""
    what = "a previous site build" if kind == "site" else "the models folder of a previous site build"
    if folder.is_symlink():
        raise InputError(f"{folder} is a symbolic link: give the folder itself, web build never writes through a link")
    if not folder.exists():
        return False
    if not folder.is_dir():
        raise InputError(f"{folder} exists and is not a directory: choose an empty or new directory")
    found = contents(folder)
    if not found:
        return True
    built = read_mark(folder, kind)
    if built is None:
        raise InputError(f"{folder} exists and is not {what} (it has no {BUILD_MARK}): choose an empty or new directory")
    extra = sorted(found - built)
    if extra:
        more = f" and {len(extra) - 1} more" if len(extra) > 1 else ""
        raise InputError(f"{folder} is {what} but also holds {extra[0]}{more}, which the build did not write: "
                         "move that out first, or choose an empty or new directory")
    return True


def put_in_place(built: Path, target: Path, kind: str) -> None:
    """Move a complete build to ``target``; what is there (checked again: it may have changed during the build) is
    moved aside first and deleted only once the new folder is in place."""
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}") if replaceable(target, kind) else None
    if old is not None:
        os.rename(target, old)
    try:
        os.rename(built, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old)


def make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, outermost first."""
    made = [f for f in (*reversed(folder.parents), folder) if not f.exists()]
    for f in made:
        f.mkdir()
    return made
