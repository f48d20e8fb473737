"""``python -m celeblook export onnx|check``: ONNX files for ONNX Runtime and the browser, and their parity."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..files import staged_output


def register(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export models to ONNX and check them")
    sub = parser.add_subparsers(dest="export_command", required=True, parser_class=type(parser))

    from ..export.onnx import OPSET
    from ..export.preset import MODELS, TEACHER

    onnx = sub.add_parser("onnx", help="write .onnx files + manifest.json (dynamic batch, single files)")
    onnx.add_argument("--preset", help="preset name (default: $CELEBLOOK_PRESET or ffhq)")
    onnx.add_argument("--checkpoint", type=Path, help="generator checkpoint (any format `render` accepts)")
    onnx.add_argument("--out", type=Path, required=True, help="output directory")
    onnx.add_argument("--heads", type=Path, help="folder of the trained heads and student (train all's OUT; default: where "
                                                 "the app reads them, weights/<preset>/)")
    onnx.add_argument("--models", nargs="+", metavar="MODEL",
                      help=f"subset of: {' '.join(MODELS)} synthesis_1024|512|256 (default: all that have weights)")
    onnx.add_argument("--teacher", action="store_true", help=f"also export the ViT-L/14 image tower ({TEACHER}.onnx)")
    onnx.add_argument("--fp16", action="store_true", help="also write *_fp16.onnx (fp32 inputs/outputs) for the browser")
    onnx.add_argument("--int8", action="store_true", help="also write dynamic-int8 encoders and mapper (text encoder: always)")
    onnx.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset, 17-20 (default {OPSET})")
    onnx.set_defaults(func=run_export)

    check = sub.add_parser("check", help="ORT vs torch parity of every file in an export directory")
    check.add_argument("directory", type=Path)
    check.set_defaults(func=run_check)


def run_export(args: argparse.Namespace) -> int:
    from ..export.preset import export_preset
    from ..presets import get_preset

    if not 17 <= args.opset <= 20:
        raise InputError(f"--opset must be between 17 and 20 (onnxruntime-web), got {args.opset}")
    preset = get_preset(args.preset)
    if args.heads is not None and not args.heads.is_dir():
        raise InputError(f"--heads {args.heads} is not a folder")
    with staged_output(args.out) as stage:  # an export cut short leaves no files that lack their manifest
        manifest = export_preset(preset, stage, checkpoint=args.checkpoint, models=args.models, teacher=args.teacher,
                                 fp16=args.fp16, int8=args.int8, opset=args.opset,
                                 progress=lambda m: print(m, flush=True), heads=args.heads)
        skipped = json.loads(manifest.read_text())["skipped"]
    print(f"wrote {args.out / manifest.name}")
    by_reason: dict[str, list[str]] = {}
    for model, reason in skipped.items():
        by_reason.setdefault(reason, []).append(model)
    for reason, models in by_reason.items():
        print(f"skipped {', '.join(models)}: {reason}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from ..export.check import check_dir

    rows = check_dir(args.directory, progress=lambda m: print(m, flush=True))
    failed = [r["file"] for r in rows if not r["ok"]]
    if failed:
        print(f"{len(failed)} of {len(rows)} files out of tolerance: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(rows)} files within tolerance")
    return 0
