"""The oracle edit strength: the C that puts the CLIP similarity of a face and its edit on the target.

``edit_similarity`` is the quantity the strength head is trained on: cos(E_I(G(w)), E_I(G(w + C delta))),
rendered at the generator's cheap 256 px exit. It falls as C grows (C = 0 gives 1), so the C that reaches a
target similarity is found by bisection on [0, c_max]; every probe costs one generator call, which is what
the learned head saves (it needs only the one call that renders the edit).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import InputError
from .limits import C_MAX, TARGET_SIMILARITY


def edit_embeddings(
    generator, encoder, wplus: Tensor, delta: Tensor, strength: Tensor | float, size: int = 256,
    reference: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(E_I(G(w)), E_I(G(w + C * delta))), each (N,768) unit norm. ``reference``: E_I(G(w)) when already known."""
    strength = torch.as_tensor(strength, dtype=wplus.dtype, device=wplus.device).reshape(-1, 1, 1)
    if reference is None:
        reference = encoder.embed_tensor(generator(wplus, size=size))
    return reference, encoder.embed_tensor(generator(wplus + strength * delta, size=size))


def edit_similarity(
    generator, encoder, wplus: Tensor, delta: Tensor, strength: Tensor | float, size: int = 256,
    reference: Tensor | None = None,
) -> Tensor:
    """cos(E_I(G(w)), E_I(G(w + C * delta))) per sample, (N,).

    Differentiable with respect to ``strength`` (and the latents); the caller picks no_grad where it can.
    """
    reference, edited = edit_embeddings(generator, encoder, wplus, delta, strength, size, reference)
    return (reference * edited).sum(dim=-1)


def edit_angle(
    generator, encoder, wplus: Tensor, delta: Tensor, strength: Tensor | float, size: int = 256,
    reference: Tensor | None = None,
) -> Tensor:
    """The angle between E_I(G(w)) and E_I(G(w + C * delta)), radians, (N,): acos of ``edit_similarity``.

    Computed as 2 atan2(|a - b|, |a + b|), which keeps its gradient for nearly equal embeddings, where
    acos(a . b) rounds to acos(1) in float32 and its derivative is infinite.
    """
    reference, edited = edit_embeddings(generator, encoder, wplus, delta, strength, size, reference)
    return 2 * torch.atan2((reference - edited).norm(dim=-1), (reference + edited).norm(dim=-1))


@dataclass(frozen=True)
class OracleStrength:
    """Unpacks as ``(strength, generator_calls)``; ``bracketed`` is False when the target lay outside [0, c_max]."""

    strength: float
    generator_calls: int
    similarity: float  # the similarity reached at ``strength``
    bracketed: bool

    def __iter__(self):
        return iter((self.strength, self.generator_calls))

    @property
    def note(self) -> str | None:
        if self.bracketed:
            return None
        return (f"similarity stays above the target up to C={self.strength:g} (reached {self.similarity:.3f}); "
                f"returned the bound")


@torch.no_grad()
def oracle_strength(
    generator, encoder, wplus: Tensor, delta: Tensor, target: float = TARGET_SIMILARITY, c_max: float = C_MAX,
    tol: float = 0.005, max_iter: int = 20, size: int = 256, reference: Tensor | None = None,
) -> OracleStrength:
    """Bisection for the C in [0, c_max] with |similarity - target| < tol, for one latent (23,512) or (1,23,512).

    Calls: one render of the face (none when its embedding is passed as ``reference``), one at c_max (to check
    the target is bracketed), then one per probe.
    When even c_max keeps the similarity above the target the bound c_max is returned, ``bracketed=False``.
    """
    if not 0.0 < target < 1.0:
        raise InputError(f"target similarity must be in (0, 1), got {target}")
    if not c_max > 0.0:
        raise InputError(f"c_max must be positive, got {c_max}")
    if not tol > 0.0 or max_iter < 1:
        raise InputError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")
    wplus, delta = wplus.reshape(1, *wplus.shape[-2:]), delta.reshape(1, *delta.shape[-2:])
    calls = 0
    if reference is None:
        reference, calls = encoder.embed_tensor(generator(wplus, size=size)), 1

    def similarity(c: float) -> float:
        nonlocal calls
        calls += 1
        return float(edit_similarity(generator, encoder, wplus, delta, c, size, reference)[0])

    lo, hi = 0.0, c_max
    sim_hi = similarity(hi)
    if sim_hi >= target - tol:  # the whole range stays at or above the target
        return OracleStrength(c_max, calls, sim_hi, bracketed=sim_hi < target + tol)
    best_c, best_sim = hi, sim_hi
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        sim = similarity(mid)
        if abs(sim - target) < abs(best_sim - target):
            best_c, best_sim = mid, sim
        if abs(sim - target) < tol:
            break
        lo, hi = (mid, hi) if sim > target else (lo, mid)
    return OracleStrength(best_c, calls, best_sim, bracketed=True)
