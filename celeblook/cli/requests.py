"""A verb's flags, made from its request's fields (celeblook.pipeline.requests), as ``train``'s from the job configs'.

Each checked field is a flag, ``--NAME`` (or the field's ``flag``): its type (``settings.scalar_type``), the choices of
its limit, its default and its help followed by the range it must lie in. The values go into the request unchecked;
``request.check(LIMITS)`` refuses a bad one with the pipeline's own line before any model loads.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field
from typing import Any

from ..limits import Choice, Limits, Range, bound
from ..models import GeneratorConfig
from ..pipeline.requests import Request, limit_of
from ..settings import scalar_type

LIMITS = Limits.of(GeneratorConfig())  # every preset renders these sizes; the pipeline checks against its own


def flagged(request: type[Request], skip: tuple[str, ...] = ()) -> dict[str, Field]:
    """The fields of ``request`` that are flags: the checked ones but ``skip``."""
    return {name: f for name, f in request.params().items() if name not in skip and (f.metadata["limit"] or f.metadata["check"])}


def flag_of(f: Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def add_request_flags(parser: argparse.ArgumentParser, request: type[Request], skip: tuple[str, ...] = (),
                      only: tuple[str, ...] | None = None, **defaults: Any) -> None:
    """A flag for every checked field of ``request`` (those a command line gives as text; what a face starts from is
    each command's own argument) but ``skip``, or just ``only``; ``defaults`` replace the fields' (a command's)."""
    for name, f in flagged(request, skip).items():
        if only is not None and name not in only:
            continue
        default = defaults.get(name, f.default)
        limit = limit_of(f, LIMITS)
        kind = scalar_type(f)
        options = dict(type=kind[0] if kind else str, nargs=None if kind else "+")  # a tuple field: one or more
        if isinstance(limit, Choice):
            options["choices"] = limit.options
        else:  # as train's flags show theirs
            options["metavar"] = ("N" if limit.integer else "X") if isinstance(limit, Range) else flag_of(f)[2:].upper()
        parser.add_argument(flag_of(f), dest=name, default=None if default is MISSING else default,
                            required=default is MISSING, help=help_of(f, default), **options)


def help_of(f: Field, default: Any) -> str:
    """The field's help, then its range and default: "... (0..500, default 0)"."""
    limit = limit_of(f, LIMITS)
    notes = [f"{bound(limit.low)}..{bound(limit.high)}"] if isinstance(limit, Range) else []
    if default not in (MISSING, None):
        notes.append(f"default {' '.join(map(str, default)) if isinstance(default, tuple) else default}")
    return (f.metadata["help"] + (f" ({', '.join(notes)})" if notes else "")).replace("%", "%%")


def request_args(args: argparse.Namespace, request: type[Request], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The values of ``request``'s flags (by field name) that ``add_request_flags`` added, but ``skip``."""
    return {name: getattr(args, name) for name in flagged(request, skip) if hasattr(args, name)}
