"""``python -m celeblook <command>``: one module per command group, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import CelebError
from ..install import command_line_without_torch, torch_installed
from ..remedy import PROGRAM

# command groups, in help order; each module defines register(subparsers)
COMMAND_MODULES = ["align", "render", "weights", "export", "edit", "train", "eval", "web"]
# what the runtime install (no torch) runs too: getting weight files, dlib's face models among them
RUNTIME_COMMANDS = {("weights", "status"), ("weights", "download"), ("weights", "setup")}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default is usage + message; keep it to one line
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(modules: list[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = _Parser(prog=PROGRAM, description="CelebrityLook: invert, generate and edit faces with MobileStyleGAN and CLIP.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in modules:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not torch_installed():
        if tuple(argv[:2]) not in RUNTIME_COMMANDS:
            return command_line_without_torch(argv)
        parser = build_parser(["weights"])  # the other groups' modules import torch
    else:
        parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CelebError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno is None:  # raised by a library, not by the system: a bug, whose traceback is wanted
            raise
        # the system refused (a read-only or full disk, a missing folder) where no command turned it into a line
        print(f"error: {f'{err.filename}: ' if err.filename else ''}{err.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
