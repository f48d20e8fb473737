"""UI-free pieces of the web app: which uploaded files it may open, the files it hands out, user text made
safe to show, and the status report. Nothing here imports Gradio; app.py passes in what it needs.
"""

from __future__ import annotations

import html
import io
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Collection
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import InputError
from .files import atomic_write_bytes
from .media import png_bytes

NOT_AN_UPLOAD = "the photo did not arrive as an upload: upload it again"


def uploaded_file(payload: object, received: Collection[str]) -> str | None:
    """The path of the file behind a photo input, when the framework's upload received it, else InputError.

    A client can name any path in its request; only a file that the upload route wrote (``received``: Gradio's
    ``Blocks.upload_file_set``) and that is still there is opened. Every other path gets the same message, whether
    or not it exists: files elsewhere on the server, the app's own results (they share the upload folder), uploads
    since deleted, missing names inside the folder, and payloads that name no path at all, so a request learns
    nothing about the server's disk. An upload lies in a folder named by its content's SHA-256, so only a client
    that has the file can name it.
    """
    if payload is None:
        return None
    path = payload.get("path") if isinstance(payload, dict) else payload
    if not isinstance(path, str) or path not in received or not os.path.isfile(path):
        raise InputError(NOT_AN_UPLOAD)
    return path


def text_block(*lines: str, bullets: bool = False) -> str:
    """Plain text (which may quote what a user typed, URLs, commands) for a Markdown component, shown as itself: an
    HTML block, whose contents Markdown leaves alone, with HTML's entities for markup. Backslash escapes would be
    shown as they are wherever Markdown does not read them (links, URLs), and the text itself stays unescaped."""
    items = [html.escape(line, quote=False) for line in dict.fromkeys(lines)]
    if bullets:
        return "<ul>\n" + "\n".join(f"<li>{item}</li>" for item in items) + "\n</ul>\n"
    return "\n".join(f"<p>{item}</p>" for item in items) + "\n"


class OutputDir:
    """The files the app hands out: each written once under a unique name (to a temporary name, then renamed),
    never rewritten while a download may be streaming it; pruned by age and by total size.

    Put ``root`` inside the framework's upload/cache folder so the files are served from here, not copied.
    """

    def __init__(self, root: str | Path | None = None, max_age_s: float = 3600.0, max_bytes: int = 512 * 2**20):
        base = Path(root) if root is not None else Path(tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="celeblook-", dir=base))
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def write(self, data: bytes, stem: str, suffix: str) -> Path:
        """``data`` under a new unique name; returns the path."""
        path = self.root / f"{stem}-{uuid.uuid4().hex[:12]}{suffix}"
        atomic_write_bytes(path, data)
        self._prune(keep=path)
        return path

    def save_png(self, image: Image.Image, stem: str = "face") -> Path:
        return self.write(png_bytes(image), stem, ".png")

    def save_latent(self, wplus: np.ndarray, stem: str = "latent") -> Path:
        """W+ as a (23, 512) float32 .npy, loadable with ``numpy.load``."""
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(wplus, np.float32))
        return self.write(buffer.getvalue(), stem, ".npy")

    def _prune(self, keep: Path) -> None:
        """Oldest first: files past ``max_age_s``, then more until the folder holds at most ``max_bytes``."""
        with self._lock:
            files = []
            for path in self.root.iterdir():
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                files.append((stat.st_mtime, stat.st_size, path))
            files.sort()
            total = sum(size for _, size, _ in files)
            cutoff = time.time() - self.max_age_s
            for mtime, size, path in files:
                if path == keep or (mtime >= cutoff and total <= self.max_bytes):
                    continue
                path.unlink(missing_ok=True)  # a download already streaming keeps reading the unlinked file
                total -= size


