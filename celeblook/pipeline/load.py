"""Which install serves the pipeline: the full one's models (torch) where torch is installed, else the runtime's."""

from __future__ import annotations

from pathlib import Path

from ..engine import Models
from ..errors import WeightsError
from ..install import FULL_INSTALL, torch_installed
from ..presets import Preset, get_preset
from ..runtime.load import load_runtime_models
from ..runtime.ort import BACKEND_ENV, backend_name


def load_models(preset: str | Preset | None = None, weights: Path | None = None) -> Models:
    """The full install's models (celeblook.factory: torch, with the ONNX engine when ``CELEBLOOK_BACKEND=onnx``),
    or, where torch is not installed, the runtime install's: the preset's ONNX export alone."""
    if torch_installed():
        from ..factory import load_models as load_torch_models

        return load_torch_models(preset, weights)
    if backend_name(default="onnx") != "onnx":
        raise WeightsError(f"{BACKEND_ENV}=torch needs {FULL_INSTALL}; this install has ONNX Runtime only")
    return load_runtime_models(preset if isinstance(preset, Preset) else get_preset(preset), weights)
