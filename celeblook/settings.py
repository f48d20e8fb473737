"""A setting: a config field with its help and the values it may take, checked whenever a config is made.

The job configs (celeblook.presets) are made of settings; the command line's flags (celeblook.cli.train) and the
request fields' types (celeblook.cli.requests) read them through ``scalar_type``.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import MISSING, Field, field, fields
from typing import Any

from .errors import InputError

SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
NOUNS = {int: "a whole number", float: "a finite number", str: "text", bool: "true or false"}
BOUNDS = ("at_least", "above", "at_most", "below")


def setting(help: str, default: Any = MISSING, *, at_least: float | None = None, above: float | None = None,
            at_most: float | None = None, below: float | None = None, choices: tuple[str, ...] = ()) -> Any:
    """A config field: ``help`` (its flag's too), its ``default`` (none: every preset file sets it), its bounds and
    ``choices``."""
    return field(default=default, metadata={"help": help, "at_least": at_least, "above": above, "at_most": at_most,
                                            "below": below, "choices": choices})


def scalar_type(f: Field) -> tuple[type, bool] | None:
    """(type, whether None is allowed) of a setting; None for the fields that are no setting (nested configs), which
    have neither a flag nor a key in a preset file."""
    name = str(f.type)
    optional = name.endswith(" | None")
    kind = SCALARS.get(name.removesuffix(" | None"))
    return (kind, optional) if kind and "help" in f.metadata else None


def setting_fields(config: type) -> list[Field]:
    """The settings of a config class (the preset's name included), in field order."""
    return [f for f in fields(config) if scalar_type(f) is not None]


def describe(f: Field) -> str:
    """What a value of setting ``f`` must be: "a finite number above 0", "a whole number in [2, 1000]", "one of: ..."."""
    meta = f.metadata
    if meta["choices"]:
        return "one of: " + ", ".join(meta["choices"])
    bounds = {name: meta[name] for name in BOUNDS if meta[name] is not None}
    noun = NOUNS[scalar_type(f)[0]]
    if len(bounds) == 2:
        (low_name, low), (high_name, high) = bounds.items()
        return f"{noun} in {'[' if low_name == 'at_least' else '('}{low:g}, {high:g}{']' if high_name == 'at_most' else ')'}"
    return " ".join([noun, *(f"{name.replace('_', ' ')} {value:g}" for name, value in bounds.items())])


def check(f: Field, value: Any) -> Any:
    """``value`` as setting ``f`` takes it (a whole number where a float is asked becomes a float); InputError
    "NAME must be WHAT, got VALUE" for anything else."""
    kind, optional = scalar_type(f)
    if value is None and optional:
        return None
    if kind is float and type(value) is int:
        value = float(value)
    meta = f.metadata
    fits = type(value) is kind and (kind is not float or math.isfinite(value)) and (
        not meta["choices"] or value in meta["choices"])
    if fits and kind in (int, float):
        fits = ((meta["at_least"] is None or value >= meta["at_least"]) and (meta["above"] is None or value > meta["above"])
                and (meta["at_most"] is None or value <= meta["at_most"]) and (meta["below"] is None or value < meta["below"]))
    if not fits:
        raise InputError(f"{f.name} must be {describe(f)}, got {value!r}")
    return value


def did_you_mean(name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
