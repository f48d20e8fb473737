"""Hashes of weight files, cached by (size, mtime) in the weights dir's ``.hashes.json`` so that a status check
does not re-read gigabytes each time; and the atomic JSON writes the manifest and the cache share."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tqdm import tqdm

from ..files import atomic_write_bytes, weights_dir

HASH_CACHE_NAME = ".hashes.json"
CHUNK = 1 << 20


def write_json(path: Path, obj: dict) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def _cache(root: Path) -> dict:
    try:
        return json.loads((root / HASH_CACHE_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _cache_key(root: Path, path: Path) -> str:
    # links are not followed: a file placed as a symbolic link into huggingface_hub's cache is still ours to cache
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def remember(root: Path, path: Path, hashes: dict[str, str]) -> None:
    """Cache the hashes of a file in the weights dir, keyed by its size and mtime (see ``file_hashes``)."""
    key = _cache_key(root, path)
    if Path(key).is_absolute():  # only files inside the weights dir are cached
        return
    st = path.stat()
    cache = _cache(root)
    cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, **hashes}
    write_json(root / HASH_CACHE_NAME, cache)


def file_hashes(path: Path, root: Path | None = None, progress: bool = False) -> dict[str, str]:
    """{'sha256', 'md5'} of a file in the weights dir, from the cache when size and mtime still match."""
    root = root or weights_dir()
    st = path.stat()
    hit = _cache(root).get(_cache_key(root, path))
    if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
        return {"sha256": hit["sha256"], "md5": hit["md5"]}
    hashes = hash_file(path, progress)
    remember(root, path, hashes)
    return hashes


def hash_file(path: Path, progress: bool = False) -> dict[str, str]:
    """{'sha256', 'md5'} of any file, read once; nothing cached."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"hashing {path.name}",
                                     disable=not progress, leave=False) as bar:
        while block := f.read(CHUNK):
            sha.update(block)
            md5.update(block)
            bar.update(len(block))
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}
