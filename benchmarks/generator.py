"""MobileStyleGAN (real FFHQ size, seeded weights) in torch eager at 1024/512/256 px, batch 1.

    python -m benchmarks.generator [--runs 7]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import machine, median_seconds, print_table
from celeblook.models.mobilestylegan import Generator
from celeblook.models.reference_layout import fill_reference

# conv/linear MACs per exit, counted for the reference network (shared/reference/mobilestylegan.md §4)
GMACS = {1024: 7.545, 512: 5.46, 256: 3.62}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    g = Generator().load_reference(fill_reference(base_seed=0))
    wplus = g.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)))
    rows = []
    with torch.inference_mode():
        for size in (1024, 512, 256):
            med, best = median_seconds(lambda: g(wplus, size=size), runs=args.runs)
            rows.append([f"{size} px", f"{med * 1000:.0f}", f"{best * 1000:.0f}", GMACS[size], f"{2 * GMACS[size] / med:.0f}"])
        med_map, _ = median_seconds(lambda: g.mapping(torch.randn(1, 512)), runs=args.runs)
    print(f"MobileStyleGAN, torch eager, batch 1, median of {args.runs} after 2 warm-up runs; {machine()}")
    print_table(["exit", "median ms", "min ms", "GMACs", "GFLOP/s"], rows)
    print(f"mapping network: {med_map * 1000:.2f} ms")


if __name__ == "__main__":
    main()
