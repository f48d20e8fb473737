"""``invert``, ``text``, ``edit`` and ``morph``: the Pipeline from the command line.

Each writes PNGs, the W+ latents as .npy (23x512 float32, the input of ``edit --latent`` and ``morph``)
and, where asked, the sweep or morph as a clip (``--gif``, or ``--format gif|mp4|webm``) into ``--out``; notices
go to stderr, scores to stdout. The flags are the requests' fields (cli/requests.py), checked by the request before
any model loads, with the pipeline's own messages.
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

from ..clips import check_format, save_clip
from ..errors import InputError
from ..files import staged_output
from ..limits import C_MAX, CLIP_FORMATS
from ..pipeline.requests import EditRequest, InvertRequest, MorphRequest, SweepRequest, TextRequest, check_field
from .requests import LIMITS, add_request_flags, request_args

if TYPE_CHECKING:
    from ..pipeline import Pipeline


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--preset", default=None, metavar="NAME | DIR | hf-hub:OWNER/NAME",
                   help="ffhq | tiny, a heads folder or ONNX export, or a published heads repository "
                        "(Pipeline.from_pretrained; default: $CELEBLOOK_PRESET or ffhq)")


def _photo_options(p: argparse.ArgumentParser, what: str = "the photo is", paste: bool = True) -> None:
    p.add_argument("--aligned", action="store_true", help=f"{what} already an FFHQ-style crop")
    p.add_argument("--face", type=int, default=None, help="which detected face, 0 = the largest (default); see `align`")
    if paste:
        p.add_argument("--paste-back", action="store_true", help="also write the result blended into the photo (<name>_in_photo.png)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("invert", help="photo -> W+ and its face: G(f(E_I(photo)))")
    p.add_argument("photo", type=Path)
    add_request_flags(p, InvertRequest, skip=("photo",))
    _photo_options(p)
    _common(p)
    p.set_defaults(func=run_invert)

    p = subparsers.add_parser("text", help="prompt -> face")
    p.add_argument("prompt", help=TextRequest.params()["prompt"].metadata["help"])
    add_request_flags(p, TextRequest, skip=("prompt",))
    _common(p)
    p.set_defaults(func=run_text)

    p = subparsers.add_parser("edit", help="move a face along a text direction: W+ + C * delta")
    p.add_argument("photo", nargs="?", type=Path, help="a photo to invert first (or give --latent)")
    p.add_argument("--latent", type=Path, help="a W+ .npy written by invert/text/edit")
    add_request_flags(p, EditRequest)
    _clip_options(p, f"also write the C sweep 0..{C_MAX} as a GIF")
    add_request_flags(p, SweepRequest, only=("n_frames",))
    _photo_options(p)
    _common(p)
    p.set_defaults(func=run_edit)

    p = subparsers.add_parser("morph", help="frames between two faces (photos or .npy latents, or a prompt for B)")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path, nargs="?", help="omit with --prompt-b")
    p.add_argument("--prompt-b", default=None, help="make the second face from this prompt instead of B")
    add_request_flags(p, MorphRequest)
    _clip_options(p, "also write the frames as a GIF")
    _photo_options(p, "the photos are", paste=False)
    _common(p)
    p.set_defaults(func=run_morph)


def _clip_options(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--gif", action="store_true", help=what)
    p.add_argument("--format", choices=CLIP_FORMATS, default=None,
                   help="write the clip in this format: gif, mp4 (H.264) or webm (VP9); mp4 and webm need the video extra")


def _clip_format(args: argparse.Namespace) -> str | None:
    """The clip's format (None: no clip), checked before any model loads: a video without PyAV is refused at once."""
    if args.gif and args.format not in (None, "gif"):
        raise InputError(f"--gif writes a GIF: for a video give --format {args.format} alone")
    return check_format(args.format or "gif") if args.gif or args.format else None


# ---------------------------------------------------------------------------------------------------


class _Results:
    """A command's files, written into the staging folder and reported under --out, and what it says once they
    are in place: notes (stderr) and one JSON line per result (stdout)."""

    def __init__(self, stage: Path, out: Path) -> None:
        self.stage, self.out = stage, out
        self.notes: list[str] = []
        self.lines: list[dict] = []

    def add(self, faces, notices: list[str], stem: str, clip: str | None = None, paste_back: bool = False) -> None:
        """Each face as STEM.png + STEM.npy (STEM_000... when several), and their clip in format ``clip`` (gif, mp4,
        webm; None: none); ``stem`` may name a subfolder."""
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
        if clip:
            made = save_clip([face.image for face in faces], self.stage / stem, clip, ping_pong=True)
            self.notes += made.notices
            self.lines.append({"file": str(self.out / f"{stem}{made.suffix}")})

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
    """A bar at the fraction done, with the pipeline's message (e.g. "step 1/50"); no "n/total" counts, which for a
    fraction read as "2/100" next to "step 1/50" (issue 21)."""
    bar = tqdm(total=1.0, dynamic_ncols=True, bar_format=total_desc + ": {percentage:3.0f}%|{bar}| {desc}")

    def update(fraction: float, message: str) -> None:
        bar.n = fraction
        bar.set_description_str(message, refresh=True)
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
    photo = PhotoStart(args.photo, args.aligned, args.face)
    request = InvertRequest.checked(LIMITS, photo, **request_args(args, InvertRequest, ("photo",)))  # before any model loads
    with _command(args) as (pipeline, results):
        progress = _progress("refine") if request.refine_steps else None
        result = pipeline.invert(request, progress=progress)
        results.add(result.faces, result.notices, "inversion", paste_back=args.paste_back)
        result.crop.save(results.stage / "crop.png")
    return 0


def run_text(args: argparse.Namespace) -> int:
    request = TextRequest.checked(LIMITS, **request_args(args, TextRequest))
    with _command(args) as (pipeline, results):
        progress = _progress("text to face") if request.optimize_steps or not pipeline.has_mapper else None
        result = pipeline.text_to_face(request, progress=progress)
        results.add(result.faces, result.notices, "text")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    if (args.photo is None) == (args.latent is None):
        raise InputError("give either a PHOTO or --latent FILE.npy (exactly one)")
    clip = _clip_format(args)
    if clip:  # before the edit is made, not after
        check_field(SweepRequest.params()["n_frames"], LIMITS, args.n_frames)
    request = EditRequest.checked(LIMITS, _start(args.latent or args.photo, args), **request_args(args, EditRequest))
    with _command(args) as (pipeline, results):
        result = pipeline.edit(request)
        if all(v.face is None for v in result.variants):
            raise InputError("no strength could run: " + "; ".join(n for v in result.variants for n in v.notices))
        results.notes += result.notices
        for i, variant in enumerate(result.variants):
            stem = "edit" if len(result.variants) == 1 else f"edit_{i}_{variant.name}"
            results.add([variant.face] if variant.face else [], variant.notices, stem, paste_back=args.paste_back)
        if clip:  # the edit's face and direction, reused
            sweep = pipeline.sweep(SweepRequest(result, n_frames=args.n_frames, size=min(args.size, 512)))
            results.add(sweep.faces, sweep.notices, "sweep/sweep", clip=clip)
    return 0


def run_morph(args: argparse.Namespace) -> int:
    from ..pipeline import PromptStart

    if (args.b is None) == (args.prompt_b is None):
        raise InputError("give either a second face B or --prompt-b TEXT (exactly one)")
    clip = _clip_format(args)
    a = _start(args.a, args)
    b = PromptStart(args.prompt_b) if args.prompt_b is not None else _start(args.b, args, "the second photo")
    request = MorphRequest.checked(LIMITS, a, b, **request_args(args, MorphRequest))  # before any model loads
    with _command(args) as (pipeline, results):
        result = pipeline.morph(request)
        results.add(result.faces, result.notices, "morph", clip=clip)
    return 0
