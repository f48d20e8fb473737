"""``python -m celeblook train <what>``: one ``register_<what>`` per trainer, listed in ``TRAINERS``.

Options left out take the preset's defaults (``Preset.training``): a bare ``--preset tiny`` trains in minutes
on a CPU, ``--preset ffhq`` runs the full jobs meant for a GPU.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import InputError
from ..files import output_dir

PRESET_DEFAULT = "default: the preset's"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options every trainer shares."""
    parser.add_argument("--preset", default=None, help="ffhq | tiny (default: $CELEBLOOK_PRESET or ffhq)")
    parser.add_argument("--out", type=Path, required=True, help="run directory: checkpoint, metrics, weights")
    parser.add_argument("--steps", type=int, default=None, help=PRESET_DEFAULT)
    parser.add_argument("--batch", type=int, default=None, help=f"per process under torchrun ({PRESET_DEFAULT})")
    parser.add_argument("--lr", type=learning_rate, default=None, help=PRESET_DEFAULT)
    add_run_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in OUT")


def add_run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", type=device_name, default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    parser.add_argument("--amp", choices=["bf16", "fp16", "off"], default="bf16", help="mixed precision on CUDA")


def learning_rate(text: str) -> float:
    try:
        lr = float(text)
    except ValueError:
        lr = math.nan
    if not (math.isfinite(lr) and lr > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return lr


def device_name(text: str) -> str:
    """A device this machine has (checked before any work), as given."""
    from ..training.common import pick_device

    try:
        pick_device(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def given(value, default):
    """The user's value where given, else the preset's default."""
    return default if value is None else value


def parse_weights(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """"mse=1,cos=0.1" -> {"mse": 1.0, "cos": 0.1}; unknown names and non-numbers are InputErrors."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in names:
            raise InputError(f"unknown loss weight {name!r}; choose from {', '.join(names)}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise InputError(f"loss weight {name}={value!r} is not a number") from None
    return weights


def _preset(name: str | None):
    from ..presets import get_preset

    return get_preset(name)


def _positive(**values: int | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be positive, got {value}")


# ---------------------------------------------------------------------------------------------------
# mapper


def register_mapper(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mapper", help="the mapper f: CLIP embedding -> W+, on generated faces")
    add_common_args(p)
    p.add_argument("--encoder", choices=["teacher", "student"], default="teacher", help="which E_I f reads")
    p.add_argument("--mix-prob", type=float, default=None, help=f"share of style-mixed W+ samples ({PRESET_DEFAULT})")
    p.add_argument("--psi-min", type=float, default=None, help=f"truncation psi is drawn from [psi-min, 1] ({PRESET_DEFAULT})")
    p.add_argument("--image-size", type=int, default=None, help=f"generator exit the encoder sees ({PRESET_DEFAULT})")
    p.add_argument("--loss-weights", default="", help="e.g. mse=1,cos=0.1,consistency=0.1")
    p.add_argument("--consistency-every", type=int, default=None, help=f"image-space term every k steps, 0: off ({PRESET_DEFAULT})")
    p.add_argument("--centre-samples", type=int, default=None, help=f"generated faces for the CLIP centre ({PRESET_DEFAULT})")
    p.add_argument("--heldout", type=int, default=None, help=f"held-out generated samples for wplus_mse ({PRESET_DEFAULT})")
    p.add_argument("--whiten-shrinkage", type=float, default=0.1, help="ridge added to the CLIP input covariance before whitening")
    p.add_argument("--eval-every", type=int, default=None, help=PRESET_DEFAULT)
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.set_defaults(func=run_mapper)


def mapper_config(
    preset, *, steps=None, batch=None, lr=None, seed=0, device=None, amp="bf16", encoder="teacher", mix_prob=None,
    psi_min=None, image_size=None, loss_weights="", consistency_every=None, centre_samples=None, heldout=None,
    whiten_shrinkage=0.1, eval_every=None, ckpt_every=1000,
):
    """MapperTrainConfig: the options given, the preset's defaults for the rest (None = not given)."""
    from ..training.mapper import MapperTrainConfig

    d = preset.training.mapper
    weights = parse_weights(loss_weights, ("mse", "cos", "consistency"))
    mix_prob, psi_min = given(mix_prob, d.mix_prob), given(psi_min, d.psi_min)
    if not 0 <= mix_prob <= 1 or not 0 <= psi_min <= 1:
        raise InputError("--mix-prob and --psi-min must lie in [0, 1]")
    steps, batch = given(steps, d.steps), given(batch, d.batch)
    _positive(steps=steps, batch=batch)
    return MapperTrainConfig(
        preset=preset.name, steps=steps, batch=batch, lr=given(lr, d.lr), warmup=d.warmup, seed=seed,
        device=device, amp=amp, encoder=encoder, mix_prob=mix_prob, psi_min=psi_min,
        image_size=given(image_size, d.image_size), consistency_every=given(consistency_every, d.consistency_every),
        centre_samples=given(centre_samples, d.centre_samples), heldout=given(heldout, d.heldout),
        eval_every=given(eval_every, d.eval_every), ckpt_every=ckpt_every, whiten_shrinkage=whiten_shrinkage,
        **{f"w_{k}": v for k, v in weights.items()},
    )


def run_mapper(args: argparse.Namespace) -> int:
    from ..training.mapper import mapper_line, train_mapper

    config = mapper_config(
        _preset(args.preset), steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, device=args.device,
        amp=args.amp, encoder=args.encoder, mix_prob=args.mix_prob, psi_min=args.psi_min, image_size=args.image_size,
        loss_weights=args.loss_weights, consistency_every=args.consistency_every, centre_samples=args.centre_samples,
        heldout=args.heldout, whiten_shrinkage=args.whiten_shrinkage, eval_every=args.eval_every,
        ckpt_every=args.ckpt_every,
    )
    metrics = train_mapper(config, output_dir(args.out), resume=args.resume)
    if "wplus_mse_final" in metrics:
        print(mapper_line(metrics))
    return 0


# ---------------------------------------------------------------------------------------------------
# strength head


def register_strength(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("strength", help="the strength head: per-face, per-prompt edit strength C")
    add_common_args(p)
    p.add_argument("--mapper", type=Path, default=None,
                   help="trained mapper (default: weights/<preset>/mapper.safetensors)")
    p.add_argument("--student", type=Path, default=None,
                   help="trained student as E_I (default: what the app serves with these heads: the student beside "
                        "the mapper, else the installed one, else the teacher's image tower)")
    p.add_argument("--target", type=float, default=None, help=f"CLIP similarity of a face and its edit ({PRESET_DEFAULT})")
    p.add_argument("--c-max", type=float, default=None, help=f"C ranges over (0, c-max) ({PRESET_DEFAULT})")
    p.add_argument("--eval-pairs", type=int, default=None, help=f"held-out (latent, prompt) pairs for metrics.json ({PRESET_DEFAULT})")
    p.set_defaults(func=run_strength)


def strength_config(preset, *, steps=None, batch=None, lr=None, seed=0, amp="bf16", target=None, c_max=None):
    """StrengthTrainConfig: the options given, the preset's defaults for the rest (None = not given)."""
    from ..training.strength import StrengthTrainConfig

    d = preset.training.strength
    target, c_max = given(target, d.target), given(c_max, d.c_max)
    if not 0 < target < 1:
        raise InputError(f"--target must lie in (0, 1), got {target}")
    if not c_max > 0:
        raise InputError(f"--c-max must be positive, got {c_max}")
    steps, batch = given(steps, d.steps), given(batch, d.batch)
    _positive(steps=steps, batch=batch)
    return StrengthTrainConfig(steps=steps, batch=batch, lr=given(lr, d.lr), target=target, c_max=c_max,
                               size=d.size, seed=seed, amp=amp)


def eval_pairs(preset, value: int | None) -> int:
    """--eval-pairs, else the preset's: the held-out pairs of the strength job's own figures."""
    pairs = given(value, preset.training.strength.eval_pairs)
    if pairs < 2:
        raise InputError("--eval-pairs must be at least 2")
    return pairs


def run_strength(args: argparse.Namespace) -> int:
    from ..training.strength import strength_job, strength_line

    preset = _preset(args.preset)
    config = strength_config(preset, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, amp=args.amp,
                             target=args.target, c_max=args.c_max)
    metrics = strength_job(preset, output_dir(args.out), config, args.mapper, args.device, args.resume,
                           eval_pairs(preset, args.eval_pairs), student=args.student)
    print(strength_line(metrics))
    return 0


# ---------------------------------------------------------------------------------------------------
# student encoder


def register_encoder(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoder", help="distil the CLIP image tower into the EfficientFormer student")
    add_common_args(p)
    p.add_argument("--real-dir", type=Path, default=None, help="folder of aligned face photos (half of each batch)")
    p.add_argument("--init-imagenet", type=Path, default=None, help="timm ImageNet safetensors for the backbone")
    p.set_defaults(func=run_encoder)


def encoder_config(preset, *, steps=None, batch=None, lr=None, seed=0, amp="bf16"):
    """EncoderTrainConfig: the options given, the preset's defaults for the rest (None = not given)."""
    from ..training.encoder import EncoderTrainConfig

    d = preset.training.encoder
    steps, batch = given(steps, d.steps), given(batch, d.batch)
    _positive(steps=steps)
    if batch < 2:
        raise InputError("--batch must be at least 2")
    return EncoderTrainConfig(steps=steps, batch=batch, lr=given(lr, d.lr), size=d.size, n_eval=d.n_eval, seed=seed,
                              amp=amp)


def run_encoder(args: argparse.Namespace) -> int:
    from ..training.encoder import encoder_job, encoder_line

    preset = _preset(args.preset)
    config = encoder_config(preset, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, amp=args.amp)
    metrics = encoder_job(preset, output_dir(args.out), config, args.real_dir, args.init_imagenet, args.device, args.resume)
    print(encoder_line(metrics))
    return 0


# ---------------------------------------------------------------------------------------------------
# all of them


def register_all(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("all", help="mapper -> encoder -> strength (through that student) -> eval (of the heads it "
                                   "trained) -> export; each stage resumable, skipped when done")
    p.add_argument("--preset", default=None, help="ffhq | tiny (default: $CELEBLOOK_PRESET or ffhq)")
    p.add_argument("--out", type=Path, required=True, help="output folder (weights/<preset> puts the heads in use)")
    for job in ("mapper", "strength", "encoder"):
        p.add_argument(f"--{job}-steps", type=int, default=None, help=f"{job} steps ({PRESET_DEFAULT})")
    p.add_argument("--eval-pairs", type=int, default=None,
                   help=f"held-out (latent, prompt) pairs of the strength job's figures ({PRESET_DEFAULT})")
    p.add_argument("--real-dir", type=Path, default=None, help="aligned face photos for the encoder (half of each batch)")
    p.add_argument("--init-imagenet", type=Path, default=None,
                   help="timm ImageNet safetensors for the student (default: the manifest's student-init file if present)")
    p.add_argument("--rehearse", action="store_true",
                   help="rehearse the run on a CPU: the preset's real-size models with seeded weights (no downloads), "
                        "a few steps of every stage, web build --space, the model card; every artefact checked")
    p.add_argument("--space", type=Path, default=None, help="with --rehearse: the Space folder (default: OUT/space)")
    add_run_args(p)
    p.set_defaults(func=run_all)


def evaluation_config(preset, seed: int = 0):
    """EvalConfig of ``train all``'s eval stage: the preset's size of it (``Preset.training.evaluation``)."""
    from dataclasses import asdict

    from ..evaluate import EvalConfig

    return EvalConfig(**asdict(preset.training.evaluation), seed=seed)


def run_all(args: argparse.Namespace) -> int:
    from ..presets import rehearsal_of
    from ..remedy import command
    from ..training.all import AllConfig, train_all

    if args.space is not None and not args.rehearse:
        raise InputError(f"--space goes with --rehearse (a real run's Space: `{command('web', 'build', '--space', args.space)}`)")
    preset = rehearsal_of(_preset(args.preset)) if args.rehearse else _preset(args.preset)
    _positive(mapper_steps=args.mapper_steps, strength_steps=args.strength_steps, encoder_steps=args.encoder_steps)
    run = dict(seed=args.seed, amp=args.amp)
    config = AllConfig(
        mapper=mapper_config(preset, steps=args.mapper_steps, device=args.device, **run),
        strength=strength_config(preset, steps=args.strength_steps, **run),
        encoder=encoder_config(preset, steps=args.encoder_steps, **run),
        evaluation=evaluation_config(preset, args.seed),
        eval_pairs=eval_pairs(preset, args.eval_pairs), real_dir=args.real_dir, init_imagenet=args.init_imagenet,
        device=args.device,
    )
    if args.rehearse:  # the real run's configuration, shrunk to a few steps (training.rehearse.smallest)
        from ..training.rehearse import rehearse

        rehearse(preset, output_dir(args.out), config, args.space)
        return 0
    train_all(preset, output_dir(args.out), config)
    return 0


# ---------------------------------------------------------------------------------------------------

TRAINERS = [register_mapper, register_strength, register_encoder, register_all]


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train the mapper, the strength head, the student encoder, or all")
    sub = train.add_subparsers(dest="trainer", required=True)
    for register_trainer in TRAINERS:
        register_trainer(sub)
