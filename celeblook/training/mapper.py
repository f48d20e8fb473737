"""Train the mapper f (CLIP embedding -> W+) on generated faces only ("data-free", arXiv 2210.04506).

One step, batched:

    z -> w = G.mapping(z), truncated by a random psi in [psi_min, 1]; with probability ``mix_prob`` a
         second w takes over from a random slot on (style mixing), so f learns per-slot codes, not one w
    W+ -> image = G(W+) at the ``image_size`` exit (256 px: CLIP looks at 224 anyway)
    image -> e = E_I(image)          (teacher or student; frozen)
    e -> W+_pred = f(e)              (the only trainable module)

    loss = w_mse * MSE(W+_pred, W+) + w_cos * (1 - cos(W+_pred - w_c, W+ - w_c))      on the 22 used slots
         + w_consistency * (1 - cos(E_I(G(W+_pred)), e))        every ``consistency_every`` steps

The W+ terms teach f the generator's own codes; the consistency term asks for what inversion needs, a
face that CLIP sees as the input, and costs a G + E_I forward and backward, hence the cadence (0 = off).

Centres: e_c = mean E_I embedding of ``centre_samples`` seeded generator faces (psi 1, no mixing),
computed before the first step and stored in the mapper, with the shrunk ZCA whitening of the same
embeddings (``whiten_shrinkage``); w_c = G.w_avg. wplus_mse is measured on a
fixed seeded held-out set before the first step and at the end (OUT/metrics.json).

Resumable exactly: the checkpoint holds the mapper, the optimizer, the grad scaler, every RNG state and
the step; the LR schedule is a function of the step. Data parallel under torchrun (WORLD_SIZE > 1):
each rank draws its own batch from its own seed; rank 0 alone writes files.
"""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import InputError
from ..models.mapper import Mapper, save_mapper, zca_whitening
from ..models.mobilestylegan import Generator
from ..presets import MapperTrainConfig, Preset, get_preset
from .common import (
    MetricsLog,
    autocast,
    distributed,
    gathered_rng,
    pick_device,
    progress_bar,
    resume_from,
    save_checkpoint,
)

CHECKPOINT = "checkpoint.safetensors"


# ---------------------------------------------------------------------------------------------------
# data: generated faces


def sample_wplus(g: Generator, n: int, psi_min: float, mix_prob: float, gen: torch.Generator) -> Tensor:
    """Seeded W+ codes (n, 23, 512): truncated w per sample, style-mixed at a random slot with prob mix_prob."""
    slots, dim, dev = g.config.n_slots, g.config.style_dim, g.w_avg.device
    z = torch.randn(2, n, dim, generator=gen).to(dev)
    psi = (psi_min + (1 - psi_min) * torch.rand(n, 1, generator=gen)).to(dev)
    crossover = torch.randint(1, slots - 1, (n, 1), generator=gen)
    mixed = torch.rand(n, 1, generator=gen) < mix_prob
    crossover = torch.where(mixed, crossover, torch.full_like(crossover, slots)).to(dev)
    w1, w2 = (g.w_avg + psi * (g.mapping(zi) - g.w_avg) for zi in z)
    take_second = torch.arange(slots, device=dev)[None, :] >= crossover  # (n, slots)
    return torch.where(take_second[:, :, None], w2[:, None, :], w1[:, None, :])


def embed_faces(g: Generator, encoder: nn.Module, wplus: Tensor, size: int) -> Tensor:
    return encoder.embed_tensor(g(wplus, size=size)).float()


@torch.no_grad()
def clip_centre(
    g: Generator, encoder: nn.Module, n: int, size: int, seed: int, batch: int, shrinkage: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """(e_c, e_scale, e_whiten) of n seeded faces (psi 1, no mixing): their mean E_I embedding, the RMS norm
    of e - e_c and its shrunk ZCA whitening."""
    gen = torch.Generator().manual_seed(seed)
    embeddings = torch.cat([
        embed_faces(g, encoder, sample_wplus(g, min(batch, n - i), 1.0, 0.0, gen), size) for i in range(0, n, batch)
    ])
    centre = embeddings.mean(dim=0)
    scale = (embeddings - centre).norm(dim=1).pow(2).mean().sqrt()
    return centre, scale, zca_whitening(embeddings.cpu(), shrinkage).to(centre.device)


@torch.no_grad()
def heldout_set(g: Generator, encoder: nn.Module, cfg: MapperTrainConfig) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(cfg.seed + 999_983)  # disjoint from the training and centre streams
    wplus = sample_wplus(g, cfg.heldout, cfg.psi_min, cfg.mix_prob, gen)
    e = torch.cat([embed_faces(g, encoder, w, cfg.image_size) for w in wplus.split(cfg.batch)])
    return wplus, e


@torch.no_grad()
def wplus_mse(mapper: Mapper, wplus: Tensor, e: Tensor) -> float:
    used = mapper.config.used_slots
    return F.mse_loss(mapper(e)[:, :used], wplus[:, :used]).item()


# ---------------------------------------------------------------------------------------------------
# losses and schedule


def mapper_losses(pred: Tensor, target: Tensor, w_center: Tensor, used: int) -> dict[str, Tensor]:
    pred, target = pred[:, :used].float(), target[:, :used].float()
    cos = F.cosine_similarity(pred - w_center, target - w_center, dim=-1)
    return {"mse": F.mse_loss(pred, target), "cos": (1 - cos).mean()}


def consistency_loss(g: Generator, encoder: nn.Module, pred: Tensor, e: Tensor, size: int) -> Tensor:
    """1 - cos(E_I(G(f(e))), e): the face the mapper predicts should look like its input to CLIP."""
    return (1 - F.cosine_similarity(embed_faces(g, encoder, pred, size), e, dim=-1)).mean()


def lr_at(step: int, cfg: MapperTrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10% at ``cfg.steps``."""
    warmup = min(cfg.warmup, cfg.steps)  # a run shorter than the warm-up still reaches the full rate
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, cfg.steps - warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


# ---------------------------------------------------------------------------------------------------
# the loop


def build_encoder(preset: Preset, which: str) -> nn.Module:
    if which == "teacher":
        from ..models.clip import create_clip

        return create_clip(preset)
    if which == "student":
        from ..models.student import create_student

        return create_student(preset)
    raise InputError(f"encoder must be 'teacher' or 'student', got {which!r}")


def train_mapper(
    cfg: MapperTrainConfig, out: Path, resume: bool = False, stop_after: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Trains, writes OUT/mapper.safetensors (+.json), OUT/metrics.json and OUT/metrics.jsonl; returns metrics.

    ``stop_after``: leave after that many steps as if interrupted (right after any checkpoint due then).
    """
    from ..factory import create_generator

    out = Path(out)
    preset = get_preset(cfg.preset)
    device = pick_device(cfg.device)
    with distributed(device) as dist_info:
        if device.type == "cuda" and dist_info.world > 1:
            device = torch.device("cuda", dist_info.local_rank)
        if dist_info.main:
            out.mkdir(parents=True, exist_ok=True)
        g = create_generator(preset).to(device)
        encoder = build_encoder(preset, cfg.encoder).to(device).eval().requires_grad_(False)
        if cfg.image_size not in g.config.sizes:
            raise InputError(f"image_size must be one of {g.config.sizes}, got {cfg.image_size}")

        torch.manual_seed(cfg.seed)  # the mapper's initial weights
        mapper = Mapper(cfg.mapper).to(device)
        optimizer = torch.optim.AdamW(mapper.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scaler = torch.amp.GradScaler(enabled=cfg.amp == "fp16" and device.type == "cuda")
        data_gen = torch.Generator().manual_seed(cfg.seed * 1_000 + 1 + dist_info.rank)
        generators = {"data": data_gen}

        heldout_w, heldout_e = heldout_set(g, encoder, cfg) if dist_info.main else (None, None)
        ckpt_path = out / CHECKPOINT
        step, metrics = 0, {}
        if resume:
            state = resume_from(ckpt_path, {"mapper": mapper, "optimizer": optimizer, "scaler": scaler}, generators,
                                rank=dist_info.rank)
            step, metrics = state["step"], state["metrics"]
            log(f"resumed from {ckpt_path} at step {step}")
        else:
            e_c, e_scale, e_whiten = clip_centre(g, encoder, cfg.centre_samples, cfg.image_size, cfg.seed,
                                                 cfg.batch, cfg.whiten_shrinkage)
            mapper.set_centres(e_c, e_scale, g.w_avg, e_whiten)
            if dist_info.main:
                metrics["wplus_mse_initial"] = wplus_mse(mapper, heldout_w, heldout_e)
                used = cfg.mapper.used_slots  # the baseline a mapper must beat: always answer w_c
                metrics["wplus_mse_mean_latent"] = F.mse_loss(
                    g.w_avg.expand_as(heldout_w[:, :used]), heldout_w[:, :used]).item()

        model = DistributedDataParallel(mapper) if dist_info.world > 1 else mapper
        metrics_log = MetricsLog(out / "metrics.jsonl", enabled=dist_info.main)
        bar = progress_bar(cfg.steps, step, "train mapper", dist_info.main)
        used = cfg.mapper.used_slots
        end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
        while step < end:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
            with torch.no_grad():
                wplus = sample_wplus(g, cfg.batch, cfg.psi_min, cfg.mix_prob, data_gen)  # fp32 targets
                with autocast(device, cfg.amp):
                    e = embed_faces(g, encoder, wplus, cfg.image_size)
            with autocast(device, cfg.amp):
                pred = model(e)
                losses = mapper_losses(pred, wplus, mapper.w_center, used)
                loss = cfg.w_mse * losses["mse"] + cfg.w_cos * losses["cos"]
                if cfg.consistency_every and cfg.w_consistency and step % cfg.consistency_every == 0:
                    losses["consistency"] = consistency_loss(g, encoder, pred, e, cfg.image_size)
                    loss = loss + cfg.w_consistency * losses["consistency"]
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            grad_norm = nn.utils.clip_grad_norm_(mapper.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            step += 1

            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            metrics_log.write(step, loss=loss.item(), lr=lr_at(step - 1, cfg), grad_norm=grad_norm.item(),
                              **{k: v.item() for k, v in losses.items()})
            if dist_info.main and (step % cfg.eval_every == 0 or step == cfg.steps):
                metrics_log.write(step, heldout_wplus_mse=wplus_mse(mapper, heldout_w, heldout_e))
            if step % cfg.ckpt_every == 0 or step == end:
                _save_checkpoint(ckpt_path, mapper, optimizer, scaler, generators, step, metrics, cfg, dist_info)
        bar.close()
        if dist_info.world > 1:
            # DDP sits in a reference cycle (its own hooks), so it outlives its name: collected now, its reducer lets
            # go of the process group before `distributed` destroys it, instead of some later GC pass, the
            # interpreter's exit included, tearing the group down under a worker that has finished
            del model
            gc.collect()

        if dist_info.main and step == cfg.steps:
            metrics["wplus_mse_final"] = wplus_mse(mapper, heldout_w, heldout_e)
            metrics["steps"] = step
            provenance = {
                "preset": preset.name, "encoder": cfg.encoder, "trained": preset.trained, "steps": step,
                "e_center": f"mean {cfg.encoder} embedding of {cfg.centre_samples} generated faces "
                            f"(seed {cfg.seed}, psi 1, {cfg.image_size} px exit)",
                "e_whiten": f"ZCA whitening of the same embeddings, shrinkage {cfg.whiten_shrinkage}",
                "w_center": "generator w_avg (mean of mapping(z) over seeded z)",
                "train_config": _jsonable(cfg), **metrics,
            }
            save_mapper(out / "mapper.safetensors", mapper, provenance)
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
            log(f"wplus_mse held-out: {metrics['wplus_mse_initial']:.5f} -> {metrics['wplus_mse_final']:.5f}; "
                f"wrote {out / 'mapper.safetensors'}")
        if dist_info.world > 1:
            # the others wait while rank 0 writes: every rank destroys the group together, none under a rank
            # still at work
            torch.distributed.barrier()
    return metrics


def _save_checkpoint(path, mapper, optimizer, scaler, generators, step, metrics, cfg, dist_info) -> None:
    rng = gathered_rng(generators, dist_info)  # every rank's RNG goes into rank 0's checkpoint
    if dist_info.main:
        save_checkpoint(path, {
            "mapper": mapper.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "rng": rng, "step": step, "metrics": metrics, "config": _jsonable(cfg),
        })


def _jsonable(cfg: MapperTrainConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=str))


def mapper_line(metrics: dict) -> str:
    """The held-out figures of a finished run (``train mapper`` and ``train all`` print it)."""
    ratio = metrics["wplus_mse_final"] / metrics["wplus_mse_mean_latent"]
    return (f"held-out W+ MSE {metrics['wplus_mse_final']:.4f} = {ratio:.2f} x the mean-latent baseline "
            f"{metrics['wplus_mse_mean_latent']:.4f} (untrained mapper: {metrics['wplus_mse_initial']:.4f})")
