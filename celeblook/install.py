"""Which install this is: the full one (requirements.txt, with torch) or the runtime one
(requirements-runtime.txt: ONNX Runtime serving an export, no torch)."""

from __future__ import annotations

import functools

FULL_INSTALL = "the full install (requirements.txt: torch, open_clip)"


@functools.cache
def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
