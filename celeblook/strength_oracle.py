"""The oracle edit strength: the C that puts the CLIP similarity of a face and its edit on the target.

The similarity cos(E_I(G(w)), E_I(G(w + C delta))), rendered at the generator's cheap 256 px exit, is the
quantity the strength head is trained on (celeblook.training.strength.edit_similarity). It falls as C grows
(C = 0 gives 1), so the C that reaches a target similarity is found by bisection on [0, c_max]; every probe
costs one generator call, which is what the learned head saves (it needs only the one call that renders the
edit). The bisection takes the similarity as a function of C, so the pipeline's engines (torch or ONNX
Runtime) and training's differentiable torch code share it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError
from .limits import C_MAX, TARGET_SIMILARITY


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


def oracle_strength(
    similarity: Callable[[float], float], target: float = TARGET_SIMILARITY, c_max: float = C_MAX, tol: float = 0.005,
    max_iter: int = 20, calls: int = 0,
) -> OracleStrength:
    """Bisection for the C in [0, c_max] with |similarity(C) - target| < tol.

    ``calls``: generator calls already spent (the render of the unedited face); each probe adds one, the
    first at c_max (to check the target is bracketed). When even c_max keeps the similarity above the target
    the bound c_max is returned, ``bracketed=False``.
    """
    if not 0.0 < target < 1.0:
        raise InputError(f"target similarity must be in (0, 1), got {target}")
    if not c_max > 0.0:
        raise InputError(f"c_max must be positive, got {c_max}")
    if not tol > 0.0 or max_iter < 1:
        raise InputError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")

    def probe(c: float) -> float:
        nonlocal calls
        calls += 1
        return similarity(c)

    lo, hi = 0.0, c_max
    sim_hi = probe(hi)
    if sim_hi >= target - tol:  # the whole range stays at or above the target
        return OracleStrength(c_max, calls, sim_hi, bracketed=sim_hi < target + tol)
    best_c, best_sim = hi, sim_hi
    for _ in range(max_iter):
        mid = 0.5 * (lo + hi)
        sim = probe(mid)
        if abs(sim - target) < abs(best_sim - target):
            best_c, best_sim = mid, sim
        if abs(sim - target) < tol:
            break
        lo, hi = (mid, hi) if sim > target else (lo, mid)
    return OracleStrength(best_c, calls, best_sim, bracketed=True)
