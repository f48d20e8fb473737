"""Pieces every training loop shares: seeded RNG state, atomic checkpoints, metrics, progress, DDP.

A checkpoint is one directory entry pair, ``<name>.safetensors`` (every tensor: model, optimizer state,
RNG states) + ``<name>.json`` (the non-tensor skeleton: step, config, optimizer hyper-parameters, and
where each tensor goes). Both are written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint, and nothing is pickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from tqdm import tqdm

from ..errors import InputError, WeightsError
from ..models.heads_io import load_weights, save_weights

# ---------------------------------------------------------------------------------------------------
# nested state (optimizer state dicts, RNG states) <-> flat tensors + JSON skeleton


def pack_state(obj: Any, tensors: dict[str, Tensor], prefix: str) -> Any:
    """Moves every tensor in ``obj`` into ``tensors`` and returns a JSON-able skeleton pointing at them."""
    if isinstance(obj, Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):  # optimizer state uses int keys, which JSON would turn into strings
        return {"__items__": [[k, pack_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [pack_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    return obj


def unpack_state(skeleton: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if "__tensor__" in skeleton:
            return tensors[skeleton["__tensor__"]]
        if "__items__" in skeleton:
            return {k: unpack_state(v, tensors) for k, v in skeleton["__items__"]}
        if "__list__" in skeleton:
            return [unpack_state(v, tensors) for v in skeleton["__list__"]]
    return skeleton


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``state``: any nesting of dicts/lists of tensors and JSON values (model, optimizer, rng, step...)."""
    tensors: dict[str, Tensor] = {}
    skeleton = pack_state(state, tensors, "s")
    save_weights(Path(path), tensors, {"kind": "training checkpoint", "state": skeleton})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """On CPU; ``load_state_dict`` of modules and optimizers moves tensors to their parameters' device."""
    tensors, meta = load_weights(Path(path))
    return unpack_state(meta["state"], tensors)


def resume_from(path: Path, stateful: dict[str, Any], generators: dict[str, torch.Generator], rank: int = 0) -> dict[str, Any]:
    """Load a checkpoint into ``stateful`` (name -> module/optimizer/scaler) and the RNGs; returns the state."""
    if not Path(path).exists():
        raise WeightsError(f"nothing to resume: {path} does not exist")
    state = load_checkpoint(path)
    for name, obj in stateful.items():
        obj.load_state_dict(state[name])
    rng = state["rng"]
    restore_rng(generators, rng[rank] if isinstance(rng, list) else rng)  # the mapper keeps one per rank
    return state


# ---------------------------------------------------------------------------------------------------
# RNG


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Tensor]:
    """Every RNG a loop draws from, so a resumed run draws exactly what an uninterrupted one would."""
    state = {name: gen.get_state() for name, gen in generators.items()}
    state["torch_cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state()
    return state


def gathered_rng(generators: dict[str, torch.Generator], dist_info: DistInfo) -> list[dict[str, Tensor]]:
    """Every rank's ``rng_state`` (collective under torchrun: every rank calls it), in rank order, for rank 0's
    checkpoint; ``resume_from(..., rank=)`` gives each rank its own back."""
    state = rng_state(generators)
    if dist_info.world == 1:
        return [state]
    gathered: list = [None] * dist_info.world
    dist.all_gather_object(gathered, state)
    return gathered


def restore_rng(generators: dict[str, torch.Generator], state: dict[str, Tensor]) -> None:
    for name, gen in generators.items():
        gen.set_state(state[name].cpu())
    torch.set_rng_state(state["torch_cpu"].cpu())
    if torch.cuda.is_available() and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"].cpu())


# ---------------------------------------------------------------------------------------------------
# metrics and progress


class MetricsLog:
    """Appends one JSON object per line to ``path``; does nothing on ranks other than 0."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def write(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **{k: float(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


_OVERALL: list[tqdm] = []  # the bar of `train all` while it runs: every job's steps also advance it


class _JobBar(tqdm):
    def update(self, n: float | None = 1) -> bool | None:
        for overall in _OVERALL:
            overall.update(n)
        return super().update(n)


def progress_bar(total: int, initial: int, desc: str, enabled: bool) -> tqdm:
    """A job's bar; inside ``overall_progress`` its steps (resumed ones included) count there too."""
    for overall in _OVERALL:
        overall.update(initial)
    return _JobBar(total=total, initial=initial, desc=desc, disable=not enabled, dynamic_ncols=True,
                   position=len(_OVERALL))


@contextlib.contextmanager
def overall_progress(total: int, initial: int, desc: str, enabled: bool) -> Iterator[tqdm]:
    """One bar over the steps of several jobs, with its elapsed time and ETA (``train all``)."""
    bar = tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True,
               position=0)
    _OVERALL.append(bar)
    try:
        yield bar
    finally:
        _OVERALL.remove(bar)
        bar.close()


# ---------------------------------------------------------------------------------------------------
# devices, precision, data parallel


def pick_device(name: str | None) -> torch.device:
    """``name`` (cpu | cuda | cuda:N), else cuda when available; an InputError for a device this machine lacks."""
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"device {name!r} is not supported: use cpu, cuda or cuda:N")
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and count == 0:
        raise InputError(f"{name}: this machine has no CUDA device (use cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= count:
        raise InputError(f"{name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """``amp``: "bf16" | "fp16" | "off". Mixed precision only on CUDA; on CPU it would only be slower."""
    if amp == "off" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


class DistInfo:
    """torchrun's WORLD_SIZE/RANK/LOCAL_RANK; world 1 (no process group) when not launched by torchrun."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def main(self) -> bool:
        return self.rank == 0


@contextlib.contextmanager
def distributed(device: torch.device) -> Iterator[DistInfo]:
    info = DistInfo()
    if info.world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield info
    finally:
        if info.world > 1:
            dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------
# the frozen models a head learns with


@dataclass
class ServingModels:
    """The frozen models a head trains with, as the pipeline will serve them, and where they came from."""

    device: torch.device
    generator: Any
    mapper: Any
    clip: Any  # text-only when a student serves as E_I
    encoder: Any  # E_I
    provenance: dict


def serving_models(preset, head: str, mapper_path: Path | None, student: Path | None, device: str | None,
                   log: Callable[[str], None]) -> ServingModels:
    """The preset's G, the trained mapper (``mapper_path``, default ``weights_dir()/<preset>/mapper.safetensors``;
    tiny falls back to its seeded mapper) and as E_I the image encoder the pipeline serves with these heads:
    ``student`` where given, else the factory's choice for the mapper's folder (a trained student beside it or
    the preset's installed one, else the teacher's tower). A head judged through E_I must learn through it."""
    from ..factory import create_generator, create_image_encoder, create_mapper, trained_student
    from ..files import sha256_file, weights_dir
    from ..models.clip import create_clip
    from ..models.mapper import load_mapper
    from ..models.student import create_student
    from ..remedy import remedy

    target_device = pick_device(device)
    generator = create_generator(preset).to(target_device)
    heads = Path(mapper_path).parent if mapper_path is not None else weights_dir() / preset.name
    if mapper_path is not None:
        if not Path(mapper_path).is_file():
            raise WeightsError(f"mapper weights not found: {mapper_path}; run `{remedy('mapper', preset.name)}`")
        mapper, meta = load_mapper(mapper_path, preset.name)
        encoder_name = meta.get("provenance", {}).get("encoder", "teacher")
    else:
        mapper, encoder_name, notices, missing = create_mapper(preset, heads, generator)
        if mapper is None:
            raise WeightsError(f"{missing[0]}; the {head} learns on the mapper's answers")
        for notice in notices:
            log(notice)
    mapper = mapper.to(target_device)
    student = Path(student) if student is not None else trained_student(preset, heads)
    clip = create_clip(preset, image_tower=student is None).to(target_device)
    if student is not None:
        encoder = create_student(preset, student)
        image_encoder = {"image_encoder": "student", "student": str(student), "student_sha256": sha256_file(student)}
    else:
        encoder, notices, _ = create_image_encoder(preset, clip, encoder_name, heads)
        image_encoder = {"image_encoder": "teacher"}
        for notice in notices:
            log(notice)
    log(f"E_I of the {head}: {student or 'the teacher image tower'}")
    provenance = {"preset": preset.name, "mapper": str(mapper_path) if mapper_path else "preset default",
                  "encoder": encoder_name, **image_encoder}
    return ServingModels(target_device, generator, mapper, clip, encoder.to(target_device), provenance)
