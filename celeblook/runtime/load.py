"""Models without torch: the runtime install (requirements-runtime.txt) serves every fast path from an ONNX export.

The export is ``CELEBLOOK_ONNX_DIR`` (default ``<weights>/<preset>/onnx``), as ``python -m celeblook export onnx``
or ``train all`` write it in the full install, or as a heads repository holds it (``CELEBLOOK_HEADS_REPO``, fetched
at the app's start). Paths that need gradients (refinement by optimisation, CLIP-guided optimisation) say that they
need the full install (``Models.gradients`` is False); the learned refiner is an exported graph and runs here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..engine import Models
from ..errors import WeightsError
from ..install import FULL_INSTALL
from ..presets import Preset
from ..remedy import Missing, command, remedy
from .ort import ONNX_DIR_ENV, OrtEngine, default_onnx_dir

HEADS = ("mapper", "strength")


def load_runtime_models(preset: Preset, heads: Path | None = None, export: Path | None = None) -> Models:
    """The preset's exported graphs as Models with no torch models; absent heads listed in ``missing``. ``heads``:
    a heads folder (``train all``'s OUT) whose ``onnx/`` export serves, unless ``CELEBLOOK_ONNX_DIR`` names one;
    ``export``: an export folder named for this pipeline (``Pipeline.from_pretrained``), served in either install."""
    if export is not None:
        directory = Path(export)
    else:
        directory = default_onnx_dir(preset.name) if heads is None or os.environ.get(ONNX_DIR_ENV) else Path(heads) / "onnx"
    engine = OrtEngine(directory)
    exported = engine.constants.get("preset")
    if exported not in (None, preset.name):
        raise WeightsError(f"the export in {directory} is of preset {exported!r}, not {preset.name!r}: set CELEBLOOK_PRESET={exported} "
                           f"or CELEBLOOK_ONNX_DIR to an export of {preset.name!r}")
    for graph in ("mapping", "text_encoder", engine.photo_graph):
        engine.file(graph)  # the fast paths need these three: a WeightsError names the export command
    missing = tuple(Missing(part, str(directory / f"{part}.onnx"), remedy("export", preset.name))
                    for part in HEADS if not engine.has(part))
    notices = [*preset.notices, "runtime install (ONNX Runtime, no torch): refinement by optimisation and CLIP-guided "
               f"optimisation need {FULL_INSTALL}"
               if export is None else f"served from the ONNX export in {directory} by ONNX Runtime: refinement by optimisation and "
               f"CLIP-guided optimisation need the torch models of a preset or heads folder, in {FULL_INSTALL}"]
    if missing:  # the export command needs the full install and trained heads: say how to get both
        notices.append(f"trained heads: train them (`{remedy('heads', preset.name)}`) or fetch published ones "
                       f"(`{command('weights', 'download', '--heads', 'OWNER/NAME')}`), then export, in the full install")
    return Models(preset, engine, notices=tuple(notices), missing=missing)
