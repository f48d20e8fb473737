"""Run ``python -m celeblook`` on a file system that fails the way real ones do; the CLI tests run it as a script:

    python tests/faulty_fs.py ARGS...    (the same ARGS as ``python -m celeblook``)

``FAULTY_READONLY=DIR``: every write under DIR fails with EROFS, as on a read-only mount. The tests run as root,
whom neither chmod nor a read-only bind (which needs privileges a CI runner lacks) stops, so the calls that
create, open for writing, rename or remove are wrapped at Python's level: builtins/io ``open``, ``os.open``,
``os.mkdir``, ``os.rename``/``os.replace``, ``os.unlink``/``os.remove``/``os.rmdir``, ``os.access``.

``FAULTY_FSIZE=BYTES``: RLIMIT_FSIZE, a real kernel limit: a write past BYTES into any file fails mid-file with
EFBIG (Python ignores SIGXFSZ), the same failure, part way through a file, as a full disk's ENOSPC.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import resource
import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _read_only(root: str) -> None:
    root = os.path.realpath(root)

    def inside(path) -> bool:
        if isinstance(path, int):  # an open file descriptor: its path was checked when it was opened
            return False
        full = os.path.realpath(os.fspath(path))
        return full == root or full.startswith(root + os.sep)

    def refuse(path) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    def guard(original, *, writes=lambda *args, **kwargs: True, paths=1):
        def wrapped(*args, **kwargs):
            for path in args[:paths]:
                if inside(path) and writes(*args, **kwargs):
                    refuse(path)
            return original(*args, **kwargs)
        return wrapped

    def open_writes(file, mode="r", *args, **kwargs) -> bool:
        return any(flag in mode for flag in "wax+")

    builtins.open = io.open = guard(io.open, writes=open_writes)
    os.open = guard(os.open, writes=lambda path, flags, *args, **kwargs: bool(flags & WRITE_FLAGS))
    os.access = guard(os.access, writes=lambda path, mode, *args, **kwargs: bool(mode & os.W_OK))
    for name in ("mkdir", "unlink", "remove", "rmdir"):
        setattr(os, name, guard(getattr(os, name)))
    for name in ("rename", "replace"):
        setattr(os, name, guard(getattr(os, name), paths=2))


if __name__ == "__main__":
    if "FAULTY_READONLY" in os.environ:
        _read_only(os.environ["FAULTY_READONLY"])
    if "FAULTY_FSIZE" in os.environ:
        limit = int(os.environ["FAULTY_FSIZE"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sys.path[0] = str(REPO)  # the package, rather than this script's folder
    sys.argv = ["python -m celeblook", *sys.argv[1:]]
    runpy.run_module("celeblook", run_name="__main__", alter_sys=True)
