"""``python -m celeblook train <what>``: one ``register_<what>`` per trainer, listed in ``TRAINERS``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def add_common_args(parser: argparse.ArgumentParser, steps: int, batch: int, lr: float) -> None:
    """The options every trainer shares."""
    parser.add_argument("--preset", default=None, help="ffhq | tiny (default: $CELEBLOOK_PRESET or ffhq)")
    parser.add_argument("--out", type=Path, required=True, help="run directory: checkpoint, metrics, weights")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch, help="per process under torchrun")
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: cuda when available)")
    parser.add_argument("--amp", choices=["bf16", "fp16", "off"], default="bf16", help="mixed precision on CUDA")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors")


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


# ---------------------------------------------------------------------------------------------------
# mapper


def register_mapper(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mapper", help="the mapper f: CLIP embedding -> W+, on generated faces")
    add_common_args(p, steps=20_000, batch=32, lr=3e-4)
    p.add_argument("--encoder", choices=["teacher", "student"], default="teacher", help="which E_I f reads")
    p.add_argument("--mix-prob", type=float, default=0.5, help="share of style-mixed W+ samples")
    p.add_argument("--psi-min", type=float, default=0.5, help="truncation psi is drawn from [psi-min, 1]")
    p.add_argument("--image-size", type=int, default=256, help="generator exit the encoder sees")
    p.add_argument("--loss-weights", default="", help="e.g. mse=1,cos=0.1,consistency=0.1")
    p.add_argument("--consistency-every", type=int, default=4, help="image-space term every k steps (0: off)")
    p.add_argument("--centre-samples", type=int, default=4096, help="generated faces for the CLIP centre")
    p.add_argument("--heldout", type=int, default=256, help="held-out generated samples for wplus_mse")
    p.add_argument("--whiten-shrinkage", type=float, default=0.1, help="ridge added to the CLIP input covariance before whitening")
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--ckpt-every", type=int, default=1000)
    p.set_defaults(func=run_mapper)


def run_mapper(args: argparse.Namespace) -> int:
    from ..presets import get_preset
    from ..training.mapper import MapperTrainConfig, train_mapper

    weights = parse_weights(args.loss_weights, ("mse", "cos", "consistency"))
    if not 0 <= args.mix_prob <= 1 or not 0 <= args.psi_min <= 1:
        raise InputError("--mix-prob and --psi-min must lie in [0, 1]")
    if args.steps < 1 or args.batch < 1:
        raise InputError("--steps and --batch must be positive")
    try:
        preset = get_preset(args.preset)
    except ValueError as err:
        raise InputError(str(err)) from None
    cfg = MapperTrainConfig(
        preset=preset.name, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, device=args.device,
        amp=args.amp, encoder=args.encoder, mix_prob=args.mix_prob, psi_min=args.psi_min,
        image_size=args.image_size, consistency_every=args.consistency_every,
        centre_samples=args.centre_samples, heldout=args.heldout, eval_every=args.eval_every,
        ckpt_every=args.ckpt_every, whiten_shrinkage=args.whiten_shrinkage, **{f"w_{k}": v for k, v in weights.items()},
    )
    train_mapper(cfg, args.out, resume=args.resume)
    return 0


# ---------------------------------------------------------------------------------------------------
# strength head


def register_strength(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("strength", help="the strength head: per-face, per-prompt edit strength C")
    add_common_args(p, steps=2000, batch=8, lr=1e-3)
    p.add_argument("--mapper", type=Path, default=None,
                   help="trained mapper (default: weights/<preset>/mapper.safetensors)")
    p.add_argument("--target", type=float, default=0.7, help="CLIP similarity of a face and its edit")
    p.add_argument("--eval-pairs", type=int, default=64, help="held-out (latent, prompt) pairs for metrics.json")
    p.set_defaults(func=run_strength)


def run_strength(args: argparse.Namespace) -> int:
    from ..training.strength import StrengthTrainConfig, strength_job

    if not 0 < args.target < 1:
        raise InputError(f"--target must lie in (0, 1), got {args.target}")
    if args.steps < 1 or args.batch < 1 or args.eval_pairs < 2:
        raise InputError("--steps and --batch must be positive, --eval-pairs at least 2")
    cfg = StrengthTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, target=args.target, seed=args.seed,
                              amp=args.amp)
    metrics = strength_job(_preset(args.preset), args.out, cfg, args.mapper, args.device, args.resume, args.eval_pairs)
    print(f"held-out |similarity - {args.target}|: learned {metrics['abs_err_learned']:.4f} (1 G call), "
          f"best fixed C={metrics['fixed_strength']:.2f} {metrics['abs_err_fixed']:.4f} (1 G call), "
          f"oracle {metrics['abs_err_oracle']:.4f} ({metrics['generator_calls_oracle']:.1f} G calls)")
    return 0


# ---------------------------------------------------------------------------------------------------
# student encoder


def register_encoder(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoder", help="distil the CLIP image tower into the EfficientFormer student")
    add_common_args(p, steps=20_000, batch=32, lr=3e-4)
    p.add_argument("--real-dir", type=Path, default=None, help="folder of aligned face photos (half of each batch)")
    p.add_argument("--init-imagenet", type=Path, default=None, help="timm ImageNet safetensors for the backbone")
    p.set_defaults(func=run_encoder)


def run_encoder(args: argparse.Namespace) -> int:
    from ..training.encoder import EncoderTrainConfig, encoder_job

    if args.steps < 1 or args.batch < 2:
        raise InputError("--steps must be positive and --batch at least 2")
    cfg = EncoderTrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed, amp=args.amp)
    metrics = encoder_job(_preset(args.preset), args.out, cfg, args.real_dir, args.init_imagenet, args.device,
                          args.resume)
    print(f"cosine to teacher on held-out generated faces: {metrics['cosine_to_teacher_initial']:.4f} -> "
          f"{metrics['cosine_to_teacher']:.4f}")
    return 0


def _preset(name: str | None):
    from ..presets import get_preset

    try:
        return get_preset(name)
    except ValueError as err:
        raise InputError(str(err)) from None


# ---------------------------------------------------------------------------------------------------

TRAINERS = [register_mapper, register_strength, register_encoder]


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train the mapper, the strength head or the student encoder")
    sub = train.add_subparsers(dest="trainer", required=True)
    for register_trainer in TRAINERS:
        register_trainer(sub)
