"""``weights status | download | setup | convert | publish``: the files in the weights manifest, and trained
heads shared through the Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("weights", help="weight files: status, download, setup, convert; publish trained heads")
    commands = parser.add_subparsers(dest="weights_command", required=True, parser_class=type(parser))

    status = commands.add_parser("status", help="present / missing / corrupt, and the command that gets each file")
    status.add_argument("--preset", default=None, help="only this preset's files (default: $CELEBLOOK_PRESET or ffhq)")
    status.set_defaults(func=run_status)

    download = commands.add_parser("download", help="fetch files (verified, atomic); default: the preset's missing defaults")
    download.add_argument("names", nargs="*", help="manifest names (see `weights status`)")
    download.add_argument("--revision", help="Hugging Face revision (branch, tag or commit) instead of the manifest's")
    download.add_argument("--preset", default=None, help="preset whose default files (or heads) to fetch")
    download.add_argument("--heads", nargs="?", const="", metavar="OWNER/NAME",
                          help="the trained heads published to this Hub repository (default: $CELEBLOOK_HEADS_REPO)")
    download.set_defaults(func=run_download)

    publish = commands.add_parser("publish", help="upload trained heads + ONNX exports + a model card to the Hub")
    publish.add_argument("--repo", required=True, metavar="OWNER/NAME", help="Hub model repository (created if needed)")
    publish.add_argument("--preset", default=None, help="default: $CELEBLOOK_PRESET or ffhq")
    publish.add_argument("--from", dest="source", type=Path, default=None,
                         help="a `train all` output folder (default: weights/<preset>)")
    publish.add_argument("--private", action="store_true", help="create the repository private")
    publish.set_defaults(func=run_publish)

    setup = commands.add_parser("setup", help="what the app needs: download the preset's defaults (Hub) and convert the generator")
    setup.add_argument("--preset", default=None, help="default: $CELEBLOOK_PRESET or ffhq")
    setup.set_defaults(func=run_setup)

    convert = commands.add_parser("convert", help="published .ckpt / HF .pth -> our safetensors + sidecar (+ manifest sha256)")
    convert.add_argument("source", nargs="?", type=Path, help="checkpoint to convert (default: the one in the weights dir)")
    convert.add_argument("--out", type=Path, help="write here instead of the preset's generator file (manifest untouched)")
    convert.add_argument("--preset", default=None, help="preset whose generator is made (default: $CELEBLOOK_PRESET or ffhq)")
    convert.set_defaults(func=run_convert)


def _preset(name: str | None):
    from ..presets import get_preset

    return get_preset(name)


def run_status(args: argparse.Namespace) -> int:
    from ..files import weights_dir
    from ..hub import weights

    preset = _preset(args.preset)
    root = weights_dir()
    print(f"weights dir: {root}   manifest: {weights.manifest_path(root)}")
    every = weights.status(root, progress=True)
    rows = [s for s in every if s.file.preset == preset.name]
    shared = [s for s in every if s.file.preset == weights.ANY_PRESET]
    width = max(len(s.file.name) for s in rows + shared)
    if not rows:
        print(f"preset {preset.name!r} uses seeded random weights: no files needed for its models")
    for s in rows:
        print(_status_line(s, width))
    print("every preset's, for photos (alignment, identity distance):")
    for s in shared:
        print(_status_line(s, width))
    return 0


def _status_line(s, width: int) -> str:
    line = f"{s.file.name:<{width}}  {s.state:<8}"
    if s.detail:
        line += f"  ({s.detail})"
    if s.state != "present":
        line += f"  -> {s.file.command}"
    return line


def run_download(args: argparse.Namespace) -> int:
    from ..files import weights_dir
    from ..hub import weights

    root = weights_dir()
    names = args.names
    if args.heads is not None:
        from ..hub.heads import download_heads

        if names:
            raise InputError("give either file names or --heads, not both")
        download_heads(args.heads, _preset(args.preset), args.revision, root)
        return 0
    if not names:
        preset = _preset(args.preset)
        names = [s.file.name for s in weights.status(root) if s.file.serves(preset.name) and s.file.default and s.state != "present"]
        if not names:
            print(f"nothing to download for preset {preset.name!r}")
    for name in names:
        weights.download(name, root, revision=args.revision)
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from ..files import weights_dir
    from ..hub.heads import publish

    preset = _preset(args.preset)
    publish(args.repo, preset, args.source or weights_dir() / preset.name, private=args.private)
    return 0


def run_setup(args: argparse.Namespace) -> int:
    from ..hub.first_run import setup

    setup(_preset(args.preset).name, command=True)
    print("all weights the app needs are in place")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from ..hub.convert import convert

    convert(args.source, args.out, preset=_preset(args.preset).name)
    return 0
