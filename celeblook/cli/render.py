"""``render``: latents from .npy files -> PNGs; ``generate``: random faces from seeds.

Both write ``OUT/latents.npy``, the W+ actually rendered (N,23,512) float32, beside the PNGs.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..errors import InputError
from ..factory import create_generator
from ..files import staged_output
from ..limits import Limits
from ..media import save_pngs, to_uint8
from ..models import GeneratorConfig
from ..models.mobilestylegan import Generator
from ..seeds import MASK as MAX_SEED

LIMITS = Limits.of(GeneratorConfig())  # the sizes and psi every command offers
MAX_IMAGES = 10_000  # seeds or latents per call
# W+ values are refused beyond this many times the largest |w| the generator's mapping network gives for
# WPLUS_RANGE_SAMPLES seeded z: inversions and edits stay well inside it; about 5x further out the synthesis
# overflows float32 (measured on the tiny and the ffhq-sized generator)
WPLUS_RANGE_FACTOR = 10
WPLUS_RANGE_SAMPLES = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser("render", help="render latents (.npy z or W+) to PNGs")
    latents = render.add_mutually_exclusive_group(required=True)
    latents.add_argument("--z", type=Path, metavar="FILE.npy", help="z latents, (N,512) or (512,)")
    latents.add_argument("--wplus", type=Path, metavar="FILE.npy", help="W+ latents, (N,23,512) or (23,512)")
    _common(render, psi_default=None)
    render.set_defaults(func=run_render)

    generate = subparsers.add_parser("generate", help="render random faces from seeds")
    generate.add_argument("--seeds", type=parse_seeds, required=True,
                          help=f"e.g. 1-4, 7 or 1-3,9: seeds 0..{MAX_SEED} (celeblook.seeds, the app's and the page's faces)")
    _common(generate, psi_default=0.7)
    generate.set_defaults(func=run_generate)


def _common(parser: argparse.ArgumentParser, psi_default: float | None) -> None:
    parser.add_argument("--checkpoint", type=Path,
                        help="generator file: published .ckpt, HF .pth or our .safetensors (default: the preset's)")
    parser.add_argument("--truncation", type=float, default=psi_default, metavar="PSI",
                        help=f"psi in [{LIMITS.psi.low:g}, {LIMITS.psi.high:g}] towards w_avg (default: {psi_default or 'none'})")
    parser.add_argument("--noise", type=parse_noise, default=None, metavar="zero|SEED",
                        help="noise maps: zero (default) or fixed from a seed")
    parser.add_argument("--size", type=int, choices=LIMITS.sizes, default=1024, help="output size in px (early exit below 1024)")
    parser.add_argument("--preset", default=None, help="ffhq | tiny (default: $CELEBLOOK_PRESET or ffhq)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")


def parse_noise(text: str) -> int | None:
    if text == "zero":
        return None
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'zero' or a seed, got {text!r}") from None
    if not 0 <= seed < 2**63:  # torch.Generator's seed range
        raise argparse.ArgumentTypeError(f"noise seed must be in [0, 2**63), got {seed}")
    return seed


def parse_seeds(text: str) -> list[int]:
    """'1-4' -> [1,2,3,4]; '1-3,9' -> [1,2,3,9]; ranges are inclusive, seeds 0..MAX_SEED."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            start, stop = int(lo), int(hi if sep else lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seed range {text!r}: use e.g. 1-4 or 1,5,9") from None
        if start < 0 or stop < start or stop > MAX_SEED:
            raise argparse.ArgumentTypeError(f"bad seed range {part.strip()!r}: seeds are 0..{MAX_SEED}, first <= last")
        seeds.extend(range(start, stop + 1))
        if len(seeds) > MAX_IMAGES:
            raise argparse.ArgumentTypeError(f"at most {MAX_IMAGES} seeds per call")
    return seeds


def _generator(args: argparse.Namespace) -> Generator:
    from ..presets import get_preset

    preset = get_preset(args.preset)
    if args.truncation is not None:
        LIMITS.psi.check(args.truncation)
    generator = create_generator(preset, args.checkpoint)
    if args.size not in generator.config.sizes:
        raise InputError(f"--size {args.size} is not one of this generator's sizes {generator.config.sizes}")
    return generator


def load_latents(path: Path, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """A finite float array of ``shape`` (or one sample without the batch axis) -> (N, *shape) float32."""
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}" if not path.exists() else f"{path} is not a regular file")
    declared, dtype = _npy_header(path)
    if not np.issubdtype(dtype, np.floating):
        raise InputError(f"{path}: {what} must be a float array, got dtype {dtype}")
    batch = (1, *shape) if declared == shape else declared
    if len(batch) != len(shape) + 1 or batch[1:] != shape or batch[0] < 1:
        want = ", ".join(map(str, shape))
        raise InputError(f"{path}: {what} must have shape (N,{want}) or ({want}), got {declared}")
    if batch[0] > MAX_IMAGES:
        raise InputError(f"{path}: {batch[0]} latents; at most {MAX_IMAGES} per call")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a .npy array ({err})") from None
    if not np.isfinite(array).all():
        raise InputError(f"{path}: {what} contains NaN or inf")
    return torch.from_numpy(array.reshape(batch).astype(np.float32))


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a .npy header declares, checked against the file's size before anything is
    read: a header can claim terabytes."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            # format 3.0 differs from 2.0 only in the header's text encoding
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _fortran_order, dtype = read(f)
            data_bytes = path.stat().st_size - f.tell()
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{path}: not a .npy array ({err})") from None
    if dtype.hasobject:
        raise InputError(f"{path}: not a .npy array of numbers (it holds Python objects, which are never unpickled)")
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow, however large the claim
    if declared > data_bytes:
        raise InputError(f"{path}: truncated or corrupt .npy: its header declares shape {shape} of {dtype} "
                         f"({declared:,} bytes) but the file holds {data_bytes:,} bytes of data")
    return shape, dtype


def check_wplus_range(generator: Generator, wplus: torch.Tensor, source: str) -> None:
    """Refuse W+ values far outside anything the generator's mapping network gives (see WPLUS_RANGE_FACTOR)."""
    largest = float(wplus.abs().max())
    with torch.no_grad():
        z = torch.randn(WPLUS_RANGE_SAMPLES, generator.config.style_dim, generator=torch.Generator().manual_seed(0))
        typical = float(generator.mapping(z.to(generator.w_avg.device)).abs().max())
    if not largest <= WPLUS_RANGE_FACTOR * typical:  # also catches NaN
        raise InputError(f"{source}: W+ values reach {largest:.3g}; this generator's mapping network gives at most "
                         f"~{typical:.3g}, and values beyond ±{WPLUS_RANGE_FACTOR * typical:.3g} are refused (no face lies there)")


@torch.no_grad()
def render_wplus(generator: Generator, wplus: torch.Tensor, size: int, noise_seed: int | None, progress: bool = True) -> np.ndarray:
    """W+ (N,23,512) -> (N,size,size,3) uint8, one image at a time (eager CPU scales badly with batch)."""
    noise = generator.make_noise(noise_seed) if noise_seed is not None else None
    images = [
        to_uint8(generator(w[None], size=size, noise=noise))[0]
        for w in tqdm(wplus, desc="rendering", unit="img", disable=not progress or len(wplus) < 2)
    ]
    return np.stack(images)


def _write(stage: Path, images: np.ndarray, wplus: torch.Tensor, names: list[str] | None = None) -> None:
    save_pngs(images, stage, names)
    np.save(stage / "latents.npy", wplus.numpy().astype(np.float32))


def _wrote(count: int, out: Path) -> None:
    print(f"wrote {count} PNG(s) and latents.npy to {out}")


def run_render(args: argparse.Namespace) -> int:
    with staged_output(args.out) as stage:  # checked before any work; the files appear all at once, or none do
        generator = _generator(args)
        config = generator.config
        if args.z is not None:
            z = load_latents(args.z, (config.style_dim,), "z")
            with torch.no_grad():
                wplus = generator.z_to_wplus(z, 1.0 if args.truncation is None else args.truncation)
        else:
            wplus = load_latents(args.wplus, (config.n_slots, config.style_dim), "W+")
            check_wplus_range(generator, wplus, str(args.wplus))
            if args.truncation is not None:
                wplus = generator.truncate(wplus, args.truncation)
        _write(stage, render_wplus(generator, wplus, args.size, args.noise), wplus)
    _wrote(len(wplus), args.out)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    with staged_output(args.out) as stage:
        generator = _generator(args)
        z = torch.cat([generator.seeded_z(s) for s in args.seeds])
        with torch.no_grad():
            wplus = generator.z_to_wplus(z, args.truncation)
        _write(stage, render_wplus(generator, wplus, args.size, args.noise), wplus, [f"seed{s:04d}.png" for s in args.seeds])
    _wrote(len(args.seeds), args.out)
    return 0
