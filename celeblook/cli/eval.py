"""``python -m celeblook eval``: inversion, edit and strength quality of a preset (celeblook.evaluate)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..files import output_file, write_output


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..evaluate import EvalConfig  # the defaults, defined once (the ffhq preset's eval size)

    p = subparsers.add_parser("eval", help="measure inversion, edits and the strength head on generated faces")
    p.add_argument("--preset", default=None, help="ffhq | tiny (default: $CELEBLOOK_PRESET or ffhq)")
    p.add_argument("--n", type=int, default=EvalConfig.n, help="faces to invert and edit")
    p.add_argument("--refine-steps", type=int, default=EvalConfig.refine_steps, help="refinement steps of the refined inversion")
    p.add_argument("--edit-prompts", type=int, default=EvalConfig.edit_prompts, help="held-out prompts per face")
    p.add_argument("--strength-pairs", type=int, default=EvalConfig.strength_pairs, help="held-out (latent, prompt) pairs for C")
    p.add_argument("--seed", type=int, default=EvalConfig.seed)
    p.add_argument("--heads", type=Path, default=None,
                   help="folder of the heads to measure, e.g. a `train all` OUT (its student serves as E_I when it "
                        "has one; default: weights/<preset>, the installed heads)")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..evaluate import EvalConfig, evaluate, table_lines

    if args.n < 1 or args.n > 1000:
        raise InputError(f"--n must be 1..1000, got {args.n}")
    if args.out is not None:
        output_file(args.out)  # before the evaluation's minutes, not after them
    config = EvalConfig(n=args.n, refine_steps=args.refine_steps, edit_prompts=args.edit_prompts,
                        strength_pairs=args.strength_pairs, seed=args.seed)
    with tqdm(total=100, desc="eval", bar_format="{l_bar}{bar}| {postfix}") as bar:
        def progress(fraction: float, message: str) -> None:
            bar.n = round(100 * fraction)
            bar.set_postfix_str(message)

        results = evaluate(args.preset, config, progress, args.heads)
    print("\n".join(table_lines(results)))
    if args.out is not None:
        write_output(args.out, (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
        print(f"wrote {args.out}")
    return 0
