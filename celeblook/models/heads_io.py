"""Our own weights on disk: ``name.safetensors`` + ``name.json`` (config, provenance, sha256).

Used for the trained heads (mapper, strength predictor) and for training checkpoints. Both files are
written under a temporary name and renamed, so a crash never leaves half a file; nothing is pickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..errors import WeightsError
from ..files import atomic_write_bytes, sha256_file


def save_weights(path: Path, tensors: dict[str, Tensor], sidecar: dict[str, Any]) -> str:
    """``path`` (.safetensors) + ``path.with_suffix('.json')`` holding ``sidecar`` and the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    digest = sha256_file(tmp)
    os.replace(tmp, path)
    meta = {**sidecar, "weights_file": path.name, "sha256": digest}
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True).encode())
    return digest


def load_weights(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Inverse of :func:`save_weights`; checks the sha256 recorded in the sidecar."""
    path = Path(path)
    sidecar_path = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else {}
    except ValueError as err:
        raise WeightsError(f"{sidecar_path} is not JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise WeightsError(f"{sidecar_path} is not a JSON object")
    if meta.get("sha256") and meta["sha256"] != sha256_file(path):
        raise WeightsError(f"{path} does not match the sha256 in {sidecar_path.name}: the file is corrupt or was replaced")
    try:
        return load_file(str(path)), meta
    except SafetensorError as err:  # e.g. a pickle under this name: the safetensors reader refuses it, we name it
        raise WeightsError(f"{path} is not a safetensors file ({str(err).splitlines()[0]})") from None


def load_head(path: Path, kind: str, config_class: type, build: Callable[[Any], nn.Module], fix: str) -> tuple[nn.Module, dict[str, Any]]:
    """A frozen head of ``kind`` from its weights + sidecar, built as ``build(config_class(**sidecar config))``.

    Config keys this version does not know are ignored; anything that does not fit is a WeightsError ending in ``fix``.
    """
    path = Path(path)
    tensors, meta = load_weights(path)
    if meta.get("kind") != kind:
        raise WeightsError(f"{path} is not a {kind} (its sidecar says {meta.get('kind')!r}): {fix}")
    known = {f.name for f in fields(config_class)}
    try:
        module = build(config_class(**{k: v for k, v in meta.get("config", {}).items() if k in known}))
    except (TypeError, ValueError, AttributeError) as err:  # a sidecar whose config is not one of this kind's
        raise WeightsError(f"{path.with_suffix('.json')} holds no {kind} config this version can build ({err}): {fix}") from None
    try:
        module.load_state_dict(tensors)
    except RuntimeError as err:
        raise WeightsError(f"{path} does not fit the {kind} its sidecar describes ({str(err).splitlines()[0]}): {fix}") from None
    return module.eval().requires_grad_(False), meta
