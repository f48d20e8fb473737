"""``python -m celeblook train <what>``: one ``register_<what>`` per trainer, listed in ``TRAINERS``.

Every setting of a job's config (celeblook.presets) is a flag, made from its field (``add_settings``): its name,
its type and bounds, its help followed by each preset's value. A flag left out takes the preset's value: a bare
``--preset tiny`` trains in minutes on a CPU, ``--preset ffhq`` runs the full jobs meant for a GPU.
"""

from __future__ import annotations

import argparse
from dataclasses import Field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import output_dir
from ..presets import (
    JOBS,
    PRESETS,
    EncoderTrainConfig,
    JobConfig,
    MapperTrainConfig,
    Preset,
    RefinerTrainConfig,
    StrengthTrainConfig,
    TrainRun,
    get_preset,
    preset_values,
    rehearsal_of,
)
from ..settings import check, describe, scalar_type

PRESET_HELP = f"{' | '.join(PRESETS)}: whose settings the flags left out take (default: $CELEBLOOK_PRESET or ffhq)"
RUN = tuple(TrainRun.settings())  # seed, amp, device: `train all` passes one of each to every job that has it


def add_settings(parser: argparse.ArgumentParser, config: type[JobConfig], prefix: str = "", skip: tuple[str, ...] = ()) -> None:
    """A flag for every setting of ``config`` but ``skip``: ``--[PREFIX]NAME``, of its type and bounds; left out, None
    (the preset's value)."""
    for f in config.settings().values():
        if f.name in skip:
            continue
        metavar = "|".join(f.metadata["choices"]) or {int: "N", float: "X"}.get(scalar_type(f)[0], f.name.upper())
        parser.add_argument(f"--{prefix}{f.name}".replace("_", "-"), type=_flag_type(f), default=None, metavar=metavar,
                            help=_help(config, f))


def changes(args: argparse.Namespace, config: type[JobConfig], prefix: str = "") -> dict[str, Any]:
    """The settings of ``config`` given on the command line (its flags under ``prefix``, as ``add_settings``)."""
    return {name: value for name in config.settings() if (value := getattr(args, f"{prefix}{name}".replace("-", "_"), None)) is not None}


def _flag_type(f: Field):
    """Text -> the setting's value, or argparse's one line: "argument --lr: must be a finite number above 0, got 'nan'"."""
    if f.name == "device":
        return device_name
    kind = scalar_type(f)[0]

    def parse(text: str):
        try:
            return check(f, kind(text))
        except (ValueError, InputError):
            raise argparse.ArgumentTypeError(f"must be {describe(f)}, got {text!r}") from None

    return parse


def _help(config: type[JobConfig], f: Field) -> str:
    values = {preset: value for preset, value in preset_values(config, f.name).items() if value is not None}
    if len(set(values.values())) == 1:
        suffix = f" (default {next(iter(values.values()))})"
    else:
        suffix = " (" + ", ".join(f"{preset}: {value}" for preset, value in values.items()) + ")" if values else ""
    return (f.metadata["help"] + suffix).replace("%", "%%")


def device_name(text: str) -> str:
    """A device this machine has (checked before any work), as given."""
    from ..training.common import pick_device

    try:
        pick_device(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def add_job_args(parser: argparse.ArgumentParser, config: type[JobConfig]) -> None:
    """What every single job takes: the preset, the run folder, its settings, --resume."""
    parser.add_argument("--preset", default=None, help=PRESET_HELP)
    parser.add_argument("--out", type=Path, required=True, help="run directory: checkpoint, metrics, weights")
    add_settings(parser, config)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in OUT")


def job_config(args: argparse.Namespace, config: type[JobConfig]) -> JobConfig:
    return config.from_preset(args.preset, **changes(args, config))


# ---------------------------------------------------------------------------------------------------
# the jobs


def register_mapper(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mapper", help="the mapper f: CLIP embedding -> W+, on generated faces")
    add_job_args(p, MapperTrainConfig)
    p.set_defaults(func=run_mapper)


def run_mapper(args: argparse.Namespace) -> int:
    from ..training.mapper import mapper_line, train_mapper

    metrics = train_mapper(job_config(args, MapperTrainConfig), output_dir(args.out), resume=args.resume)
    if "wplus_mse_final" in metrics:
        print(mapper_line(metrics))
    return 0


def register_strength(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("strength", help="the strength head: per-face, per-prompt edit strength C")
    add_job_args(p, StrengthTrainConfig)
    add_serving_args(p)
    p.set_defaults(func=run_strength)


def add_serving_args(parser: argparse.ArgumentParser) -> None:
    """--mapper and --student: the frozen models a head learns with (``training.common.serving_models``)."""
    parser.add_argument("--mapper", type=Path, default=None,
                        help="trained mapper (default: weights/<preset>/mapper.safetensors)")
    parser.add_argument("--student", type=Path, default=None,
                        help="trained student as E_I (default: what the app serves with these heads: the student "
                             "beside the mapper, else the installed one, else the teacher's image tower)")


def run_strength(args: argparse.Namespace) -> int:
    from ..training.strength import strength_job, strength_line

    config = job_config(args, StrengthTrainConfig)
    metrics = strength_job(get_preset(args.preset), output_dir(args.out), config, args.mapper, args.resume, student=args.student)
    print(strength_line(metrics))
    return 0


def register_encoder(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoder", help="distil the CLIP image tower into the EfficientFormer student")
    add_job_args(p, EncoderTrainConfig)
    p.add_argument("--real-dir", type=Path, default=None, help="folder of aligned face photos (half of each batch)")
    p.add_argument("--init-imagenet", type=Path, default=None, help="timm ImageNet safetensors for the backbone")
    p.set_defaults(func=run_encoder)


def run_encoder(args: argparse.Namespace) -> int:
    from ..training.encoder import encoder_job, encoder_line

    config = job_config(args, EncoderTrainConfig)
    metrics = encoder_job(get_preset(args.preset), output_dir(args.out), config, args.real_dir, args.init_imagenet, args.resume)
    print(encoder_line(metrics))
    return 0


def register_refiner(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("refiner", help="the refiner R: a few learned steps that sharpen the mapper's inversion")
    add_job_args(p, RefinerTrainConfig)
    add_serving_args(p)
    p.add_argument("--real-dir", type=Path, default=None,
                   help="folder of aligned face photos (half of each batch; pixel and CLIP terms only)")
    p.set_defaults(func=run_refiner)


def run_refiner(args: argparse.Namespace) -> int:
    from ..training.refiner import refiner_job, refiner_line

    config = job_config(args, RefinerTrainConfig)
    metrics = refiner_job(get_preset(args.preset), output_dir(args.out), config, args.mapper, args.resume,
                          student=args.student, real_dir=args.real_dir)
    if metrics:
        print(refiner_line(metrics))
    return 0


# ---------------------------------------------------------------------------------------------------
# all of them


def register_all(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("all", help="mapper -> encoder -> strength and refiner (through that student) -> eval (of the "
                                   "heads it trained) -> export; each stage resumable, skipped when done")
    p.add_argument("--preset", default=None, help=PRESET_HELP)
    p.add_argument("--out", type=Path, required=True, help="output folder (weights/<preset> puts the heads in use)")
    p.add_argument("--real-dir", type=Path, default=None,
                   help="aligned face photos for the encoder and the refiner (half of each batch)")
    p.add_argument("--init-imagenet", type=Path, default=None,
                   help="timm ImageNet safetensors for the student (default: the manifest's student-init file if present)")
    p.add_argument("--rehearse", action="store_true",
                   help="rehearse the run on a CPU: the preset's real-size models with seeded weights (no downloads), "
                        "a few steps of every stage, web build --space, the model card; every artefact checked")
    p.add_argument("--space", type=Path, default=None, help="with --rehearse: the Space folder (default: OUT/space)")
    run = p.add_argument_group("every job", "given once, for each job that has the setting")
    add_settings(run, MapperTrainConfig, skip=tuple(name for name in MapperTrainConfig.settings() if name not in RUN))
    for job, config in JOBS.items():  # --mapper-steps, --strength-target, --eval-n, ...
        add_settings(p.add_argument_group(f"{job} (--{job}-NAME)"), config, prefix=f"{job}-", skip=RUN)
    p.set_defaults(func=run_all)


def all_preset(args: argparse.Namespace) -> Preset:
    """The preset of a ``train all`` command line: ``--preset``'s, or with ``--rehearse`` its rehearsal."""
    return rehearsal_of(get_preset(args.preset)) if args.rehearse else get_preset(args.preset)


def all_config(args: argparse.Namespace):
    """AllConfig of a ``train all`` command line: each job's config, the run settings given to every job that has them."""
    from ..training.all import AllConfig

    preset = all_preset(args)
    run = {name: getattr(args, name) for name in RUN if getattr(args, name) is not None}
    configs = {job: config.from_preset(preset, **{k: v for k, v in run.items() if k in config.settings()},
                                       **changes(args, config, f"{job}-")) for job, config in JOBS.items()}
    return AllConfig(mapper=configs["mapper"], strength=configs["strength"], encoder=configs["encoder"],
                     refiner=configs["refiner"], evaluation=configs["eval"], real_dir=args.real_dir,
                     init_imagenet=args.init_imagenet)


def run_all(args: argparse.Namespace) -> int:
    from ..remedy import command
    from ..training.all import train_all

    if args.space is not None and not args.rehearse:
        raise InputError(f"--space goes with --rehearse (a real run's Space: `{command('web', 'build', '--space', args.space)}`)")
    config = all_config(args)
    if args.rehearse:  # the real run's configuration, shrunk to a few steps (training.rehearse.smallest)
        from ..training.rehearse import rehearse

        rehearse(all_preset(args), output_dir(args.out), config, args.space)
        return 0
    train_all(all_preset(args), output_dir(args.out), config)
    return 0


# ---------------------------------------------------------------------------------------------------

TRAINERS = [register_mapper, register_strength, register_encoder, register_refiner, register_all]


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train the mapper, the strength head, the student encoder, the refiner, or all")
    sub = train.add_subparsers(dest="trainer", required=True)
    for register_trainer in TRAINERS:
        register_trainer(sub)
