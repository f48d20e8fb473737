"""Seeded normal samples, the same in Python and in the browser page (web/src/prng.js).

A seed names a face: the app, the CLI and the static page must draw the same z for it, so the stream is
defined here rather than borrowed from torch or numpy (whose generators the page cannot reproduce):
mulberry32 (a 32-bit state with a full period) for uniforms, Box-Muller for normals, in float64 like
JavaScript, then float32.
"""

from __future__ import annotations

import math

import numpy as np

MASK = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    """JavaScript's Math.imul: the low 32 bits of the product."""
    return (a * b) & MASK


def _mulberry32(seed: int):
    state = seed & MASK

    def uniform() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & MASK
        t = _imul(state ^ (state >> 15), state | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & MASK
        return ((t ^ (t >> 14)) & MASK) / 4294967296.0

    return uniform


def seeded_normal(seed: int, n: int) -> np.ndarray:
    """``n`` N(0,1) samples (float32) determined by ``seed`` (an integer 0..2^32-1)."""
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MASK:
        raise ValueError(f"seed must be an integer 0..{MASK}, got {seed!r}")
    uniform = _mulberry32(int(seed))
    out = np.empty(n, np.float64)
    for i in range(0, n, 2):
        u = 1.0 - uniform()  # (0, 1]: the log is finite
        v = uniform()
        r = math.sqrt(-2.0 * math.log(u))
        out[i] = r * math.cos(2.0 * math.pi * v)
        if i + 1 < n:
            out[i + 1] = r * math.sin(2.0 * math.pi * v)
    return out.astype(np.float32)
