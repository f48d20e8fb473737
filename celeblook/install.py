"""Which install this is: the full one (torch, open_clip: `pip install "celeblook[full]"`, or `bash dev.sh` in a
checkout) or the runtime one (`pip install celeblook`: ONNX Runtime serving an export, no torch); and whether the
package runs from a checkout of the repository or from an installed wheel."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

FULL_INSTALL = 'the full install (`bash dev.sh` in a checkout, or pip install "celeblook[full]": torch, open_clip)'
CHECKOUT = Path(__file__).resolve().parents[1]  # the repository's root, when the package runs from a checkout


def from_checkout() -> bool:
    """True when the package runs from a checkout (directly or installed editable), False from an installed wheel."""
    return (CHECKOUT / "pyproject.toml").is_file()


@functools.cache
def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def command_line_without_torch(argv: list[str]) -> int:
    """The command line's answer where torch is missing: how to get the full install, in one line (exit 2), or
    as the whole help for ``-h``/``--help`` (exit 0). Its commands build, train and export torch models."""
    if importlib.util.find_spec("onnxruntime") is not None:
        why = ("this runtime install (ONNX Runtime, no torch) serves the app on an ONNX export: python app.py in a checkout "
               "(`celeblook weights status|download|setup` run here too)")
    else:
        why = (f"this Python ({sys.executable}) has neither torch nor ONNX Runtime: in a checkout, run "
               "`bash dev.sh celeblook ...`, which installs the full install into .venv first")
    line = f"the command line needs {FULL_INSTALL}; {why}"
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: celeblook <command> [options]\n{line}")
        return 0
    print(f"error: {line}", file=sys.stderr)
    return 2
