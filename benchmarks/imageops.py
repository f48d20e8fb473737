"""What dropping OpenCV costs in time: alignment and paste-back with celeblook.photo.imageops (Pillow and numpy)
against the same code with the OpenCV calls it replaced swapped back in (tests/test_imageops.py's), in one run.

``align_face(photo, size=1024)`` and ``paste_back`` of its 1024 px crop, median of ``--runs`` after a warm-up,
on the public-domain test photos at the sizes uploads come in (the long side capped at 2048).

    OMP_WAIT_POLICY=PASSIVE python -m benchmarks.imageops [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

from benchmarks.common import median_seconds, print_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' photos and OpenCV reference

from real_photos import astronaut, grace_hopper  # noqa: E402
from test_imageops import OPENCV  # noqa: E402

from celeblook.photo import imageops  # noqa: E402
from celeblook.photo.align import align_face  # noqa: E402
from celeblook.photo.paste import paste_back  # noqa: E402


def photos() -> dict[str, Image.Image]:
    hopper = grace_hopper()
    return {"astronaut 512x512": astronaut(), "Grace Hopper 512x600": hopper,
            "Grace Hopper 1747x2048": hopper.resize((1747, 2048), Image.Resampling.LANCZOS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours = {name: getattr(imageops, name) for name in OPENCV}
    rows = []
    for name, photo in photos().items():
        seconds = {}
        for label, ops in (("imageops", ours), ("OpenCV", OPENCV)):
            for op, fn in ops.items():
                setattr(imageops, op, fn)
            aligned = align_face(photo, size=1024)
            seconds[label] = (median_seconds(lambda: align_face(photo, size=1024), args.runs, warmup=1)[0],
                              median_seconds(lambda: paste_back(photo, aligned, aligned.image), args.runs, warmup=1)[0])
        (a, p), (a_cv, p_cv) = seconds["imageops"], seconds["OpenCV"]
        rows.append([name, f"{a:.3f}", f"{a_cv:.3f}", f"{a / a_cv:.1f}x", f"{p:.3f}", f"{p_cv:.3f}", f"{p / p_cv:.1f}x"])
    print_table(["photo", "align s", "OpenCV", "ratio", "paste-back s", "OpenCV", "ratio"], rows)


if __name__ == "__main__":
    main()
