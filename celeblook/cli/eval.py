"""``python -m celeblook eval``: inversion, edit and strength quality of a preset's heads (celeblook.evaluate).

Its flags are EvalConfig's settings (celeblook.presets), made as ``train``'s are; left out, the preset's values.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..files import output_file, write_output
from ..presets import PRESETS, EvalConfig
from .train import add_settings, changes


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure inversion, edits and the strength head on generated faces")
    p.add_argument("--preset", default=None, help=f"{' | '.join(PRESETS)} (default: the preset of --heads, else "
                                                  "$CELEBLOOK_PRESET or ffhq)")
    p.add_argument("--heads", default=None, metavar="DIR | hf-hub:OWNER/NAME",
                   help="the heads to measure: a folder (e.g. a `train all` OUT, whose student serves as E_I when it has "
                        "one) or a published heads repository, fetched and installed (default: weights/<preset>, the "
                        "installed heads)")
    add_settings(p, EvalConfig)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..evaluate import evaluate, table_lines
    from ..pipeline import pretrained

    if args.out is not None:
        output_file(args.out)  # before the evaluation's minutes, not after them
    found = pretrained(args.heads, args.preset)
    if found.export is not None:
        raise InputError(f"{args.heads} is an ONNX export: eval measures the heads themselves (a folder of safetensors "
                         "heads, or a heads repository)")
    config = EvalConfig.from_preset(found.preset, **changes(args, EvalConfig))
    with tqdm(total=100, desc="eval", bar_format="{l_bar}{bar}| {postfix}") as bar:
        def progress(fraction: float, message: str) -> None:
            bar.n = round(100 * fraction)
            bar.set_postfix_str(message)

        results = evaluate(found.preset, config, progress, found.heads)
    print("\n".join(table_lines(results)))
    if args.out is not None:
        write_output(args.out, (json.dumps(results, indent=2, sort_keys=True) + "\n").encode())
        print(f"wrote {args.out}")
    return 0
