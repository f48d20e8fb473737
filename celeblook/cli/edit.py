"""``invert``, ``text``, ``edit`` and ``morph``: the Pipeline from the command line.

Each writes PNGs, the W+ latents as .npy (23x512 float32, the input of ``edit --latent`` and ``morph``)
and, where asked, GIFs into ``--out``; notices go to stderr, scores to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import InputError
from ..models.strength import C_MAX


def _common(p: argparse.ArgumentParser, size: int = 1024) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--preset", default=None, help="ffhq | tiny (default: $CELEBLOOK_PRESET or ffhq)")
    p.add_argument("--size", type=int, default=size, choices=[256, 512, 1024])


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("invert", help="photo -> W+ and its face: G(f(E_I(photo)))")
    p.add_argument("photo", type=Path)
    p.add_argument("--refine-steps", type=int, default=0, help="optimise W+ afterwards (identity)")
    p.add_argument("--aligned", action="store_true", help="the photo is already an FFHQ-style crop")
    _common(p)
    p.set_defaults(func=run_invert)

    p = subparsers.add_parser("text", help="prompt -> face")
    p.add_argument("prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=0.7)
    p.add_argument("--optimize-steps", type=int, default=0, help="CLIP-guided optimisation (slow path)")
    _common(p)
    p.set_defaults(func=run_text)

    p = subparsers.add_parser("edit", help="move a face along a text direction: W+ + C * delta")
    p.add_argument("photo", nargs="?", type=Path, help="a photo to invert first (or give --latent)")
    p.add_argument("--latent", type=Path, help="a W+ .npy written by invert/text/edit")
    p.add_argument("--target", required=True, help='e.g. "a face with glasses"')
    p.add_argument("--source", default=None, help='neutral prompt (default "a face"), or "<image>"')
    p.add_argument("--strength", default="learned", help="a number C, 'learned' or 'oracle'")
    p.add_argument("--gif", action="store_true", help=f"also write the C sweep 0..{C_MAX} as a GIF")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--aligned", action="store_true", help="the photo is already an FFHQ-style crop")
    _common(p)
    p.set_defaults(func=run_edit)

    p = subparsers.add_parser("morph", help="frames between two faces (photos or .npy latents)")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--mode", choices=["interpolate", "style_mix"], default="interpolate")
    p.add_argument("--crossover", type=int, default=8, help="style_mix: first slot taken from B")
    p.add_argument("--gif", action="store_true")
    p.add_argument("--aligned", action="store_true", help="the photos are already FFHQ-style crops")
    _common(p, size=512)
    p.set_defaults(func=run_morph)


# ---------------------------------------------------------------------------------------------------


def _pipeline(args: argparse.Namespace):
    from ..pipeline import Pipeline

    return Pipeline.from_preset(args.preset)


def _progress(total_desc: str):
    bar = tqdm(total=100, desc=total_desc, dynamic_ncols=True)

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(message, refresh=True)
        if fraction >= 1:
            bar.close()

    return update


def _load_latent(path: Path) -> torch.Tensor:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read latent {path}: {str(err).splitlines()[0]}") from None
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def _photo_or_latent(pipeline, path: Path, aligned: bool = False) -> torch.Tensor:
    if path.suffix.lower() == ".npy":
        return _load_latent(path)
    return pipeline.invert(_aligned_photo(path, aligned), size=256).faces[0].wplus  # the latent is all we need


def _aligned_photo(path: Path, aligned: bool):
    from ..align import align_face
    from ..photo import load_photo

    photo = load_photo(path)
    face = align_face(photo.image, size=1024, already_aligned=aligned)
    for notice in photo.notices + face.notices:
        print(f"note: {notice}", file=sys.stderr)
    return face.image


def _write(result, out: Path, stem: str, gif: bool = False) -> None:
    from ..media import save_gif

    out.mkdir(parents=True, exist_ok=True)
    for notice in result.notices:
        print(f"note: {notice}", file=sys.stderr)
    for i, face in enumerate(result.faces):
        name = stem if len(result.faces) == 1 else f"{stem}_{i:03d}"
        face.image.save(out / f"{name}.png")
        np.save(out / f"{name}.npy", face.wplus.numpy())
        print(json.dumps({"file": str(out / f"{name}.png"), **face.scores}))
    if gif:
        path = save_gif([face.image for face in result.faces], out / f"{stem}.gif", ping_pong=True)
        print(json.dumps({"file": str(path)}))


def run_invert(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    photo = _aligned_photo(args.photo, args.aligned)
    progress = _progress("refine") if args.refine_steps else None
    _write(pipeline.invert(photo, args.refine_steps, args.size, progress), args.out, "inversion")
    return 0


def run_text(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    progress = _progress("text to face") if args.optimize_steps or pipeline.mapper is None else None
    result = pipeline.text_to_face(args.prompt, args.seed, args.psi, args.size, args.optimize_steps, progress)
    _write(result, args.out, "text")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    if (args.photo is None) == (args.latent is None):
        raise InputError("give either a PHOTO or --latent FILE.npy (exactly one)")
    strength = args.strength
    if strength not in ("learned", "oracle"):
        try:
            strength = float(strength)
        except ValueError:
            raise InputError(f"--strength must be a number, 'learned' or 'oracle', got {strength!r}") from None
    pipeline = _pipeline(args)
    wplus = _load_latent(args.latent) if args.latent else _photo_or_latent(pipeline, args.photo, args.aligned)
    _write(pipeline.edit(wplus, args.target, args.source, strength, args.size), args.out, "edit")
    if args.gif:
        sweep = pipeline.sweep(wplus, args.target, args.source, n_frames=args.frames, size=min(args.size, 512))
        _write(sweep, args.out / "sweep", "sweep", gif=True)
    return 0


def run_morph(args: argparse.Namespace) -> int:
    pipeline = _pipeline(args)
    a, b = (_photo_or_latent(pipeline, path, args.aligned) for path in (args.a, args.b))
    result = pipeline.morph(a, b, args.frames, args.size, args.mode, args.crossover)
    _write(result, args.out, "morph", gif=args.gif)
    return 0
