"""Which models serve the pipeline: what a pretrained name stands for, and which install loads them (the full one's
models where torch is installed, else the runtime's)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..engine import Models
from ..errors import InputError, WeightsError
from ..hub.heads import check_repo_id, download_heads, repo_preset
from ..install import FULL_INSTALL, torch_installed
from ..presets import PRESETS, Preset, get_preset, is_preset
from ..runtime.load import load_runtime_models
from ..runtime.ort import BACKEND_ENV, backend_name

HUB_PREFIX = "hf-hub:"
Name = str | os.PathLike | Preset | None


@dataclass(frozen=True)
class Pretrained:
    """What a pretrained name stands for: a preset, and where its heads are."""

    preset: Preset
    heads: Path | None = None  # a heads folder (``train all``'s OUT); None: those installed for the preset
    export: Path | None = None  # an ONNX export folder, which ONNX Runtime serves alone


def pretrained(name: Name = None, preset: str | None = None) -> Pretrained:
    """``name``: a preset ("ffhq", "tiny"; None: ``$CELEBLOOK_PRESET``, else ffhq) with the heads installed for it
    (``weights/<preset>``); a folder of heads as ``train all --out`` leaves them, whose sidecars name their preset,
    or of an ONNX export; or "hf-hub:OWNER/NAME", a published heads repository, downloaded, verified and installed as
    ``weights download --heads`` does (a set already installed from it costs one request, or none offline).
    ``preset``: the preset the caller expects (an InputError where the name holds another); for a folder whose files
    name none, the preset it is. A preset name wins over a folder of that name (write ``./tiny`` for the folder)."""
    if isinstance(name, Preset):
        return Pretrained(_agree(name, preset, repr(name.name)))
    if name is None or (isinstance(name, str) and is_preset(name)):
        return Pretrained(_agree(get_preset(name or preset), preset, repr(name)))
    if isinstance(name, str) and name.startswith(HUB_PREFIX):
        repo = check_repo_id(name.removeprefix(HUB_PREFIX))
        chosen = get_preset(preset or repo_preset(repo))
        download_heads(repo, chosen)  # the repository's index must name this preset
        return Pretrained(chosen)
    folder = Path(name)
    if not folder.is_dir():
        kinds = f"a preset ({', '.join(PRESETS)}), a folder of heads or of an ONNX export, or {HUB_PREFIX}OWNER/NAME"
        if isinstance(name, str) and not {"/", os.sep, "."} & set(name):
            raise InputError(f"unknown preset {name!r}: a pretrained name is {kinds}")
        raise InputError(f"no heads folder {folder}: a pretrained name is {kinds}")
    if (folder / "manifest.json").is_file():  # an export: its constants name the preset it was made from
        return Pretrained(_named(folder, {_get(folder / "manifest.json", "constants", "preset")}, preset), export=folder)
    sidecars = [folder / "mapper.json", folder / "strength.json", *sorted(folder.glob("student_*.json"))]
    named = {*(_get(path, "provenance", "preset") for path in sidecars), _get(folder / "train_all.json", "preset"),
             _get(folder / "onnx" / "manifest.json", "constants", "preset"), _get(folder / "installed-heads.json", "index", "preset")}
    return Pretrained(_named(folder, named, preset), heads=folder)


def _named(folder: Path, names: set[object], expected: str | None) -> Preset:
    """The one preset that the files of ``folder`` name (``expected`` where they name none)."""
    names = {n for n in names if isinstance(n, str)}
    if len(names) > 1:
        raise InputError(f"{folder} holds files of presets {', '.join(sorted(map(repr, names)))}: one folder, one preset")
    if not names and not expected:
        raise InputError(f"{folder} holds no heads that name their preset (mapper.json, strength.json, student_*.json, "
                         "train_all.json) and no ONNX export (manifest.json)")
    return _agree(get_preset(names.pop() if names else expected), expected, str(folder))


def _agree(chosen: Preset, expected: str | None, what: str) -> Preset:
    if expected and expected != chosen.name:
        raise InputError(f"{what} is of preset {chosen.name!r}, not {expected!r}")
    return chosen


def _get(path: Path, *keys: str) -> object:
    """The value at ``keys`` in a JSON file; None where the file, or any key on the way, is not there."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def load_pretrained(name: Name = None) -> Models:
    """The models of a pretrained name (``pretrained``): an ONNX export served by ONNX Runtime, else ``load_models``."""
    found = pretrained(name)
    if found.export is not None:
        return load_runtime_models(found.preset, export=found.export)
    return load_models(found.preset, found.heads)


def load_models(preset: str | Preset | None = None, weights: Path | None = None) -> Models:
    """The full install's models (celeblook.factory: torch, with the ONNX engine when ``CELEBLOOK_BACKEND=onnx``),
    or, where torch is not installed, the runtime install's: the preset's ONNX export alone."""
    if torch_installed():
        from ..factory import load_models as load_torch_models

        return load_torch_models(preset, weights)
    if backend_name(default="onnx") != "onnx":
        raise WeightsError(f"{BACKEND_ENV}=torch needs {FULL_INSTALL}; this install has ONNX Runtime only")
    return load_runtime_models(preset if isinstance(preset, Preset) else get_preset(preset), weights)
