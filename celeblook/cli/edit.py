"""``invert``, ``text``, ``edit`` and ``morph``: the Pipeline from the command line.

Each writes PNGs, the W+ latents as .npy (23x512 float32, the input of ``edit --latent`` and ``morph``)
and, where asked, GIFs into ``--out``; notices go to stderr, scores to stdout. Values are checked by the
pipeline against its limits (the same the app uses); argparse only shows them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..files import staged_output
from ..limits import C_MAX, Limits
from ..media import save_gif
from ..models import GeneratorConfig

if TYPE_CHECKING:
    from ..pipeline import Pipeline

LIMITS = Limits.of(GeneratorConfig())  # every preset renders these sizes; the pipeline checks its own


def _common(p: argparse.ArgumentParser, size: int = 1024) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--preset", default=None, metavar="NAME | DIR | hf-hub:OWNER/NAME",
                   help="ffhq | tiny, a heads folder or ONNX export, or a published heads repository "
                        "(Pipeline.from_pretrained; default: $CELEBLOOK_PRESET or ffhq)")
    p.add_argument("--size", type=int, default=size, choices=LIMITS.sizes)


def _photo_options(p: argparse.ArgumentParser, what: str = "the photo is", paste: bool = True) -> None:
    p.add_argument("--aligned", action="store_true", help=f"{what} already an FFHQ-style crop")
    p.add_argument("--face", type=int, default=None, help="which detected face, 0 = the largest (default); see `align`")
    if paste:
        p.add_argument("--paste-back", action="store_true", help="also write the result blended into the photo (<name>_in_photo.png)")


def register(subparsers: argparse._SubParsersAction) -> None:
    steps = LIMITS.steps
    p = subparsers.add_parser("invert", help="photo -> W+ and its face: G(f(E_I(photo)))")
    p.add_argument("photo", type=Path)
    p.add_argument("--refine-steps", type=int, default=0, help=f"optimise W+ afterwards (identity), {steps.low}..{steps.high}")
    iterations = LIMITS.refine_iterations
    p.add_argument("--refine-iterations", type=int, default=None,
                   help=f"the learned refiner's iterations, {iterations.low}..{iterations.high} (default: its own, where "
                        "one is installed; 0: the mapper's answer alone)")
    _photo_options(p)
    _common(p)
    p.set_defaults(func=run_invert)

    p = subparsers.add_parser("text", help="prompt -> face")
    p.add_argument("prompt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=0.7, help=f"truncation, {LIMITS.psi.low:g}..{LIMITS.psi.high:g}")
    p.add_argument("--optimize-steps", type=int, default=0, help=f"CLIP-guided optimisation (slow path), up to {steps.high}")
    _common(p)
    p.set_defaults(func=run_text)

    p = subparsers.add_parser("edit", help="move a face along a text direction: W+ + C * delta")
    p.add_argument("photo", nargs="?", type=Path, help="a photo to invert first (or give --latent)")
    p.add_argument("--latent", type=Path, help="a W+ .npy written by invert/text/edit")
    p.add_argument("--target", required=True, help='e.g. "a face with glasses"')
    p.add_argument("--source", default=None, help='neutral prompt (default "a face"), or "<image>"')
    p.add_argument("--strength", nargs="+", default=["learned"],
                   help=f"one or more of: a number C ({LIMITS.strength.low:g}..{LIMITS.strength.high:g}), 'learned', 'oracle'")
    p.add_argument("--gif", action="store_true", help=f"also write the C sweep 0..{C_MAX} as a GIF")
    p.add_argument("--frames", type=int, default=16, help=f"sweep frames, {LIMITS.frames.low}..{LIMITS.frames.high}")
    _photo_options(p)
    _common(p)
    p.set_defaults(func=run_edit)

    p = subparsers.add_parser("morph", help="frames between two faces (photos or .npy latents, or a prompt for B)")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path, nargs="?", help="omit with --prompt-b")
    p.add_argument("--prompt-b", default=None, help="make the second face from this prompt instead of B")
    p.add_argument("--frames", type=int, default=16, help=f"{LIMITS.frames.low}..{LIMITS.frames.high}")
    p.add_argument("--mode", choices=["interpolate", "style_mix"], default="interpolate")
    p.add_argument("--crossover", type=int, default=8, help="style_mix: first slot taken from B")
    p.add_argument("--gif", action="store_true")
    _photo_options(p, "the photos are", paste=False)
    _common(p, size=512)
    p.set_defaults(func=run_morph)


# ---------------------------------------------------------------------------------------------------


class _Results:
    """A command's files, written into the staging folder and reported under --out, and what it says once they
    are in place: notes (stderr) and one JSON line per result (stdout)."""

    def __init__(self, stage: Path, out: Path) -> None:
        self.stage, self.out = stage, out
        self.notes: list[str] = []
        self.lines: list[dict] = []

    def add(self, faces, notices: list[str], stem: str, gif: bool = False, paste_back: bool = False) -> None:
        """Each face as STEM.png + STEM.npy (STEM_000... when several), and their GIF; ``stem`` may name a subfolder."""
        (self.stage / stem).parent.mkdir(exist_ok=True)
        self.notes += notices
        for i, face in enumerate(faces):
            name = stem if len(faces) == 1 else f"{stem}_{i:03d}"
            face.image.save(self.stage / f"{name}.png")
            np.save(self.stage / f"{name}.npy", face.wplus)
            files = {"file": str(self.out / f"{name}.png")}
            if paste_back and face.pasted is not None:
                face.pasted.save(self.stage / f"{name}_in_photo.png")
                files["in_photo"] = str(self.out / f"{name}_in_photo.png")
            if face.identity is not None:
                self.notes.append(face.identity.describe())
            self.lines.append({**files, **face.scores})
        if gif:
            self.notes += save_gif([face.image for face in faces], self.stage / f"{stem}.gif", ping_pong=True).notices
            self.lines.append({"file": str(self.out / f"{stem}.gif")})

    def show(self) -> None:
        for notice in dict.fromkeys(self.notes):
            print(f"note: {notice}", file=sys.stderr)
        for line in self.lines:
            print(json.dumps(line))


@contextlib.contextmanager
def _command(args: argparse.Namespace) -> Iterator[tuple[Pipeline, _Results]]:
    """The pipeline and the results of one command: --out is checked before the models load, and the files
    appear in it only once all are written (``staged_output``); then the notes and JSON lines are shown."""
    from ..pipeline import Pipeline

    with staged_output(args.out) as stage:
        results = _Results(stage, args.out)
        yield Pipeline.from_pretrained(args.preset), results
    results.show()


def _progress(total_desc: str):
    bar = tqdm(total=100, desc=total_desc, dynamic_ncols=True)

    def update(fraction: float, message: str) -> None:
        bar.n = round(100 * fraction)
        bar.set_postfix_str(message, refresh=True)
        if fraction >= 1:
            bar.close()

    return update


def _start(path: Path, args: argparse.Namespace, label: str = "the photo"):
    """A .npy W+ latent, else a photo for the pipeline to load, align and invert."""
    from ..pipeline import PhotoStart
    from .render import load_latents

    if path.suffix.lower() == ".npy":
        latents = load_latents(path, (LIMITS.n_slots, 512), "W+")
        if len(latents) != 1:
            raise InputError(f"{path} holds {len(latents)} latents; give a file with one W+ (23x512)")
        return latents[0]
    return PhotoStart(path, args.aligned, args.face, label)


def run_invert(args: argparse.Namespace) -> int:
    from ..pipeline import PhotoStart

    if args.photo.suffix.lower() == ".npy":
        raise InputError(f"invert takes a photo; {args.photo.name} is a latent: render it with `render --wplus FILE` "
                         "or edit it with `edit --latent FILE`")
    with _command(args) as (pipeline, results):
        progress = _progress("refine") if args.refine_steps else None
        result = pipeline.invert(PhotoStart(args.photo, args.aligned, args.face), args.refine_steps, args.size, progress,
                                 args.refine_iterations)
        results.add(result.faces, result.notices, "inversion", paste_back=args.paste_back)
        result.crop.save(results.stage / "crop.png")
    return 0


def run_text(args: argparse.Namespace) -> int:
    with _command(args) as (pipeline, results):
        progress = _progress("text to face") if args.optimize_steps or not pipeline.has_mapper else None
        result = pipeline.text_to_face(args.prompt, args.seed, args.psi, args.size, args.optimize_steps, progress)
        results.add(result.faces, result.notices, "text")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    if (args.photo is None) == (args.latent is None):
        raise InputError("give either a PHOTO or --latent FILE.npy (exactly one)")
    if args.gif:
        LIMITS.frames.check(args.frames)  # before the edit is made, not after
    with _command(args) as (pipeline, results):
        start = _start(args.latent or args.photo, args)
        result = pipeline.edit(start, args.target, args.source, args.strength, args.size)
        if all(v.face is None for v in result.variants):
            raise InputError("no strength could run: " + "; ".join(n for v in result.variants for n in v.notices))
        results.notes += result.notices
        for i, variant in enumerate(result.variants):
            stem = "edit" if len(result.variants) == 1 else f"edit_{i}_{variant.name}"
            results.add([variant.face] if variant.face else [], variant.notices, stem, paste_back=args.paste_back)
        if args.gif:
            sweep = pipeline.sweep(result, n_frames=args.frames, size=min(args.size, 512))  # its direction, reused
            results.add(sweep.faces, sweep.notices, "sweep/sweep", gif=True)
    return 0


def run_morph(args: argparse.Namespace) -> int:
    from ..pipeline import PromptStart

    if (args.b is None) == (args.prompt_b is None):
        raise InputError("give either a second face B or --prompt-b TEXT (exactly one)")
    with _command(args) as (pipeline, results):
        a = _start(args.a, args)
        b = PromptStart(args.prompt_b) if args.prompt_b is not None else _start(args.b, args, "the second photo")
        result = pipeline.morph(a, b, args.frames, args.size, args.mode, args.crossover)
        results.add(result.faces, result.notices, "morph", gif=args.gif)
    return 0
