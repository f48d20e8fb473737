"""``align``: photos -> FFHQ-aligned crops, and where every face was found.

For each PHOTO it writes ``OUT/<stem>.png`` (the crop) and ``OUT/<stem>.json``: ``faces``, each with
``box`` [x0, y0, x1, y1], ``eye_left``, ``eye_right``, ``mouth_left``, ``mouth_right`` [x, y] and ``quad``
(the crop square's corners: top-left, bottom-left, bottom-right, top-right), in the photo's pixels after
EXIF orientation; and ``chosen``, the index of the face cropped. A photo with no face gets one line on
stderr and no files; the others are still written, and the exit code is then 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from ..errors import CelebError, InputError
from ..files import staged_output
from ..photo.load import MAX_SIDE, MIN_SIDE


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("align", help="crop photos to FFHQ framing; write each crop and where its faces are")
    p.add_argument("photos", type=Path, nargs="+", metavar="PHOTO")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--size", type=crop_size, default=1024, help=f"crop size in px, {MIN_SIDE}-{MAX_SIDE} (default 1024)")
    p.add_argument("--face", type=int, default=None, metavar="N", help="which detected face to crop, 0 = the largest (default)")
    p.set_defaults(func=run_align)


def crop_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size in px, got {text!r}") from None
    if not MIN_SIDE <= size <= MAX_SIDE:
        raise argparse.ArgumentTypeError(f"size must be {MIN_SIDE}-{MAX_SIDE} px, got {size}")
    return size


def align_one(path: Path, stage: Path, out: Path, size: int, face: int | None) -> dict:
    """Writes the photo's crop and record into ``stage``; returns its line, which names them in ``out``."""
    from ..photo.align import alignment_record
    from ..photo.aligned import align_photo

    found = align_photo(path, False, face, path.name, size)  # the app's own loading and alignment
    for notice in found.notices:
        tqdm.write(f"note: {path.name}: {notice}", file=sys.stderr)  # clears the progress bar's line first
    record = alignment_record(found.aligned, found.full_size)  # in the file's own pixels, as loading saw them
    png, record_path = f"{path.stem}.png", f"{path.stem}.json"
    found.aligned.image.save(stage / png)
    (stage / record_path).write_text(json.dumps(record) + "\n")
    return {"file": str(out / png), "record": str(out / record_path), "faces": len(record["faces"]), "chosen": record["chosen"]}


def run_align(args: argparse.Namespace) -> int:
    stems = [path.stem for path in args.photos]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise InputError(f"photos would overwrite each other's output (same name: {', '.join(clashes)}): rename one")
    lines, failed = [], 0
    with staged_output(args.out) as stage:  # the crops appear together, once all are written
        for path in tqdm(args.photos, desc="align", unit="photo", disable=len(args.photos) == 1, file=sys.stderr):
            try:
                lines.append(align_one(path, stage, args.out, args.size, args.face))
            except CelebError as err:
                tqdm.write(f"error: {err}", file=sys.stderr)
                failed += 1
    for line in lines:
        print(json.dumps(line))
    return 2 if failed else 0
