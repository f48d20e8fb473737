"""Training and evaluating the refiner R (``python -m celeblook train refiner``), data-free like the other heads.

One step, batched (G, E_I and the mapper f frozen; R the only trainable module):

    W+ = sample_wplus(psi in [psi_min, 1], style mixing with prob mix_prob: the mapper's faces)
    x = G(W+) at the ``size`` exit;  e = E_I(x);  w_0 = f(e)
    for t in 0 .. k-1:   w_{t+1} = w_t + R(x, G(w_t))        (G(w_t) without gradient, ReStyle-style:
                                                                 each iteration learns from where it starts)
        loss += w_wplus * MSE(w_{t+1}, W+)  +  w_pixel * MSE(G(w_{t+1}), x)  +  w_clip * (1 - cos(E_I(G(w_{t+1})), e))
        w_{t+1} is detached before the next iteration

With ``--real-dir`` half of each batch are aligned real photos, where only the pixel and CLIP terms apply (their
W+ is unknown). Every random draw comes from one seeded torch.Generator per rank whose state is checkpointed, so
``--resume`` continues exactly where an uninterrupted run would be. Under torchrun (WORLD_SIZE > 1) each rank
draws its own batch from its own seed, gradients are averaged (DDP), rank 0 alone writes files.

Evaluation (OUT/metrics.json, ``python -m celeblook eval``) on held-out generated faces from a seed stream no job
draws from: pixel MSE at the ``size`` exit of the mapper's answer, of R after k iterations and of the existing
refinement by optimisation (``celeblook.refine.refine_inversion``, ``optimise_steps`` steps), W+ MSE of the
mapper and of R, and the seconds each took here in torch.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..errors import InputError
from ..media import to_uint8
from ..models.heads_io import save_weights
from ..models.refiner import REFINER_KIND, Refiner, RefinerConfig, refine_steps
from ..presets import RefinerTrainConfig
from .common import (
    MetricsLog,
    ServingModels,
    autocast,
    distributed,
    gathered_rng,
    progress_bar,
    resume_from,
    save_checkpoint,
    serving_models,
)
from .encoder import load_photo, real_photo_split
from .mapper import sample_wplus

WEIGHTS_NAME = "refiner.safetensors"
CHECKPOINT_NAME = "refiner_checkpoint.safetensors"
HELD_OUT_SEED_OFFSET = 2_000_029  # held-out faces: a stream neither this nor any other job trains on


def refiner_config(preset, config: RefinerTrainConfig) -> RefinerConfig:
    """The refiner a preset's job trains: its backbone and the job's sizes and iterations."""
    if config.input_size % config.grid:
        raise InputError(f"refiner setting input_size must be a multiple of grid {config.grid}, got {config.input_size}")
    return RefinerConfig(backbone=preset.refiner_backbone, backbone_kwargs=dict(preset.refiner_kwargs),
                         input_size=config.input_size, render_size=config.size, iterations=config.iterations,
                         grid=config.grid, hidden=config.hidden)


def refiner_loss(refiner, models: ServingModels, x: Tensor, wplus: Tensor | None, config: RefinerTrainConfig,
                 n_known: int) -> tuple[Tensor, dict[str, float]]:
    """The summed loss of k iterations on faces ``x`` (N,3,S,S); the first ``n_known`` have the known ``wplus``."""
    g, encoder, size = models.generator, models.encoder, config.size
    with torch.no_grad(), autocast(x.device, config.amp):
        e = encoder.embed_tensor(x).float()
        current = models.mapper(e).float()
    used = g.config.n_slots - 1
    total, parts = 0.0, {"wplus": 0.0, "pixel": 0.0, "clip": 0.0}
    for _ in range(config.iterations):
        with torch.no_grad(), autocast(x.device, config.amp):
            reconstruction = g(current, size=size)
        with autocast(x.device, config.amp):
            step = current + refiner(x, reconstruction).float()
            image = g(step, size=size)
            terms = {"pixel": F.mse_loss(image.float(), x)}
            if config.w_clip:
                terms["clip"] = (1 - F.cosine_similarity(encoder.embed_tensor(image).float(), e, dim=-1)).mean()
        if n_known:
            terms["wplus"] = F.mse_loss(step[:n_known, :used], wplus[:n_known, :used])
        weights = {"wplus": config.w_wplus, "pixel": config.w_pixel, "clip": config.w_clip}
        total = total + sum(weights[name] * value for name, value in terms.items())
        for name, value in terms.items():
            parts[name] += value.item() / config.iterations
        current = step.detach()
    return total, parts


@torch.no_grad()
def calibrate(refiner: Refiner, models: ServingModels, config: RefinerTrainConfig, psi_min: float, mix_prob: float,
              rng: torch.Generator, log: Callable[[str], None]) -> None:
    """Before the first step (not on resume): R's pixel readout from ridge regressions of the known W+ residuals on
    ``calibration_faces`` generated faces, one fit per iteration, each on the pairs that every earlier fit's
    iterations start from (so the step fitted last also serves the later iterations, whose errors are smaller)."""
    g, size = models.generator, config.size

    def draw(n: int) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` generated faces: their W+, the faces and the mapper's answer for them."""
        wplus = sample_wplus(g, n, psi_min, mix_prob, rng)
        x = g(wplus, size=size)
        with autocast(x.device, config.amp):
            return wplus, x, models.mapper(models.encoder.embed_tensor(x).float()).float()

    batches = [min(config.batch, config.calibration_faces - i) for i in range(0, config.calibration_faces, config.batch)]
    faces, targets, first = [], [], []  # per batch; the faces kept on the CPU (ffhq's would crowd a GPU)
    for n in batches:
        wplus, x, w0 = draw(n)
        first.append(w0)
        faces.append(x.half().cpu())  # half: ffhq's thousands of 256 px faces in a few GB of host memory
        targets.append(wplus)
    starts = [first]  # starts[t][b]: the iteration-t latents of batch b
    for _ in range(config.iterations):
        pooled = [refiner.pooled(refiner.pair(x.to(w.device).float(), g(w, size=size)))
                  for latents in starts for x, w in zip(faces, latents)]
        residuals = [target - w for latents in starts for target, w in zip(targets, latents)]
        error = refiner.calibrate(torch.cat(pooled), torch.cat(residuals), config.ridge)
        steps = [refine_steps(refiner, g, x.to(w.device).float(), w, len(starts)) for x, w in zip(faces, first)]
        starts = [first, *([batch[t] for batch in steps] for t in range(len(starts)))]
    # judged on fresh faces: a fit that does not generalise (too few faces, a poor mapper) is no start at all
    _, x, w0 = draw(config.batch)
    before = pixel_mse(g, w0, x, size)
    after = pixel_mse(g, refine_steps(refiner, g, x, w0, config.iterations)[-1], x, size)
    verdict = f"fresh faces' pixel MSE {before:.5f} -> {after:.5f}"
    if not after < before:  # NaN included
        refiner.reset()
        verdict += ": worse, so training starts from no step"
    log(f"refiner calibrated on {config.calibration_faces} faces x {config.iterations} iterations "
        f"(relative fit error {error:.3f}; {verdict})")


def train_refiner(
    refiner: Refiner, models: ServingModels, config: RefinerTrainConfig, psi_min: float, mix_prob: float, out: Path,
    resume: bool = False, show_progress: bool = True, sidecar: dict | None = None, real_dir: Path | None = None,
    stop_after: int | None = None, log: Callable[[str], None] = print,
) -> Path | None:
    """Trains ``refiner`` in place; writes OUT/refiner.safetensors (+ .json), a checkpoint and metrics.jsonl and
    returns the weights' path (None on ranks other than 0, and when ``stop_after`` steps left it unfinished)."""
    out = Path(out)
    device = models.device
    with distributed(device) as dist_info:
        if dist_info.main:
            out.mkdir(parents=True, exist_ok=True)
        real_train = real_photo_split(real_dir)[0] if real_dir is not None else []
        rng = torch.Generator().manual_seed(config.seed * 1_000 + 1 + dist_info.rank)
        optimizer = torch.optim.AdamW(refiner.parameters(), lr=config.lr)
        checkpoint = out / CHECKPOINT_NAME
        start = 0
        if resume:
            start = resume_from(checkpoint, {"model": refiner, "optimizer": optimizer}, {"data": rng},
                                rank=dist_info.rank)["step"]
            log(f"resumed from {checkpoint} at step {start}")
        elif config.calibration_faces:
            calibrate(refiner, models, config, psi_min, mix_prob, rng, log)
        model = DistributedDataParallel(refiner) if dist_info.world > 1 else refiner
        metrics = MetricsLog(out / "metrics.jsonl", enabled=dist_info.main)
        bar = progress_bar(config.steps, start, "refiner", show_progress and dist_info.main)
        n_real = config.batch // 2 if real_train else 0
        end = config.steps if stop_after is None else min(config.steps, start + stop_after)
        refiner.train().requires_grad_(True)
        for step in range(start, end):
            wplus = sample_wplus(models.generator, config.batch - n_real, psi_min, mix_prob, rng)
            with torch.no_grad():
                x = models.generator(wplus, size=config.size).float()
            if n_real:
                picks = torch.randint(len(real_train), (n_real,), generator=rng).tolist()
                photos = torch.stack([load_photo(real_train[i], config.size) for i in picks]).to(device)
                x = torch.cat([x, photos])
            loss, parts = refiner_loss(model, models, x, wplus, config, config.batch - n_real)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(refiner.parameters(), config.grad_clip)
            optimizer.step()
            metrics.write(step + 1, loss=loss.item(), grad_norm=grad_norm.item(), **parts)
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", pixel=f"{parts['pixel']:.4f}")
            if (step + 1) % config.checkpoint_every == 0 or step + 1 == end:
                rng_states = gathered_rng({"data": rng}, dist_info)
                if dist_info.main:
                    save_checkpoint(checkpoint, {"model": refiner.state_dict(), "optimizer": optimizer.state_dict(),
                                                 "rng": rng_states, "step": step + 1})
        bar.close()
        refiner.eval().requires_grad_(False)
        if dist_info.world > 1:  # DDP's hooks hold it in a cycle: let go of the group before it is destroyed
            del model
            gc.collect()
        weights = out / WEIGHTS_NAME
        if dist_info.main and end == config.steps:
            save_weights(weights, refiner.state_dict(), {
                "kind": REFINER_KIND, "config": refiner.config.to_dict(), "training": asdict(config),
                **(sidecar or {}),
            })
        if dist_info.world > 1:  # the others wait while rank 0 writes
            torch.distributed.barrier()
    return weights if dist_info.main and end == config.steps else None


def pixel_mse(generator, wplus: Tensor, x: Tensor, size: int) -> float:
    return F.mse_loss(generator(wplus, size=size), x).item()


@torch.no_grad()
def evaluate_refiner(
    refiner: Refiner, models: ServingModels, n: int, psi_min: float, mix_prob: float, seed: int,
    optimise_steps: int, iterations: int | None = None,
) -> dict[str, float]:
    """Mapper vs R vs refinement by optimisation on ``n`` held-out generated faces (pixel MSE at R's render size,
    W+ MSE on the used slots, seconds per face in torch on this machine)."""
    from PIL import Image

    from ..refine import refine_inversion

    g, encoder, size = models.generator, models.encoder, refiner.config.render_size
    k = refiner.config.iterations if iterations is None else iterations
    rng = torch.Generator().manual_seed(seed + HELD_OUT_SEED_OFFSET)
    wplus = sample_wplus(g, n, psi_min, mix_prob, rng)
    x = g(wplus, size=size)
    used = g.config.n_slots - 1
    started = time.perf_counter()
    w0 = models.mapper(encoder.embed_tensor(x))
    mapper_seconds = time.perf_counter() - started
    refined = refine_steps(refiner, g, x, w0, k)[-1] if k else w0
    refiner_seconds = time.perf_counter() - started - mapper_seconds
    photos = [Image.fromarray(face) for face in to_uint8(g(wplus, size=256))]  # the 8-bit faces a person would send
    optimised, optimise_seconds = [], 0.0
    for i, photo in enumerate(photos):  # the existing slow path, as the pipeline runs it: one photo at a time
        started = time.perf_counter()
        with torch.enable_grad():
            result = refine_inversion(g, encoder, photo, w0[i: i + 1].cpu().numpy(), optimise_steps)
        optimise_seconds += time.perf_counter() - started
        optimised.append(torch.from_numpy(result.wplus).to(x.device))
    optimised = torch.cat(optimised)
    return {
        **identity_figures(g, photos, w0, refined),
        "pixel_mse_mapper": pixel_mse(g, w0, x, size),
        "pixel_mse_refiner": pixel_mse(g, refined, x, size),
        "pixel_mse_optimised": pixel_mse(g, optimised, x, size),
        "wplus_mse_mapper": F.mse_loss(w0[:, :used], wplus[:, :used]).item(),
        "wplus_mse_refiner": F.mse_loss(refined[:, :used], wplus[:, :used]).item(),
        "wplus_mse_optimised": F.mse_loss(optimised[:, :used], wplus[:, :used]).item(),
        "iterations": k,
        "optimise_steps": optimise_steps,
        "seconds_per_face_refiner_torch": refiner_seconds / n,
        "seconds_per_face_optimised_torch": optimise_seconds / n,
        "n": n,
        "size": size,
    }


def identity_figures(generator, photos: list, mapper: Tensor, refined: Tensor) -> dict[str, float | int]:
    """dlib's identity distance of the faces (``photos``, 256 px) to the mapper's and to R's reconstructions, averaged
    over the faces where all three are found (a trained ffhq G's faces); NaN where none is (the tiny preset's random
    pictures hold none), as every figure with nothing to average."""
    from PIL import Image

    from ..photo.identity import face_descriptor, identity_distance

    before, after = [], []
    for photo, latents in zip(photos, torch.stack([mapper, refined], dim=1)):
        reference = face_descriptor(photo)
        if reference is None:  # nothing to compare with: its reconstructions are not rendered
            continue
        found = [identity_distance(reference, Image.fromarray(image)).distance
                 for image in to_uint8(generator(latents, size=256))]
        if None not in found:
            before.append(found[0])
            after.append(found[1])
    return {"identity_faces": len(before),
            "identity_distance_mapper": float(np.mean(before)) if before else math.nan,
            "identity_distance_refiner": float(np.mean(after)) if after else math.nan}


def refiner_line(metrics: dict) -> str:
    """``evaluate_refiner``'s figures (``train refiner`` and ``train all`` print it)."""
    return (f"held-out pixel MSE at {metrics['size']} px: mapper {metrics['pixel_mse_mapper']:.5f}, refiner "
            f"({metrics['iterations']} iterations) {metrics['pixel_mse_refiner']:.5f} "
            f"({metrics['pixel_mse_refiner'] / metrics['pixel_mse_mapper']:.2f} x), optimisation "
            f"({metrics['optimise_steps']} steps) {metrics['pixel_mse_optimised']:.5f}; W+ MSE "
            f"{metrics['wplus_mse_mapper']:.4f} -> {metrics['wplus_mse_refiner']:.4f}; " + identity_words(metrics))


def identity_words(metrics: dict) -> str:
    if not metrics["identity_faces"]:
        return f"identity distance: no face found in the {metrics['n']} held-out faces"
    return (f"identity distance to the photo {metrics['identity_distance_mapper']:.3f} -> "
            f"{metrics['identity_distance_refiner']:.3f} ({metrics['identity_faces']} of {metrics['n']} faces found)")


def refiner_job(
    preset, out: Path, config: RefinerTrainConfig, mapper_path: Path | None = None, resume: bool = False,
    show_progress: bool = True, log: Callable[[str], None] = print, student: Path | None = None,
    real_dir: Path | None = None, stop_after: int | None = None,
) -> dict[str, float]:
    """``python -m celeblook train refiner``: R on top of the mapper and through the E_I the pipeline serves with
    them (``training.common.serving_models``, as ``train strength``). Writes OUT/refiner.safetensors and
    OUT/metrics.json (``evaluate_refiner`` with ``ms_per_iteration`` of ONNX Runtime added); returns the metrics
    (empty on ranks other than 0 and when ``stop_after`` left the run unfinished)."""
    models = serving_models(preset, "refiner", mapper_path, student, config.device, log)
    psi_min, mix_prob = config.truncation(preset)
    torch.manual_seed(config.seed)  # R's initial weights
    refiner = Refiner(refiner_config(preset, config)).to(models.device)
    sidecar = {"provenance": {**models.provenance, "real_dir": str(real_dir) if real_dir else None}}
    weights = train_refiner(refiner, models, config, psi_min, mix_prob, out, resume, show_progress, sidecar, real_dir,
                            stop_after, log)
    if weights is None:
        return {}
    log(f"wrote {weights}; evaluating on {config.eval_n} held-out generated faces")
    metrics = evaluate_refiner(refiner, models, config.eval_n, psi_min, mix_prob, config.seed, config.optimise_steps)
    metrics = {**metrics, **onnx_timing(refiner, models.generator), "preset": preset.label}
    Path(out, "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def onnx_timing(refiner: Refiner, generator, repeats: int = 5) -> dict[str, float]:
    """Median milliseconds of one iteration in ONNX Runtime on this machine (R's graph and the synthesis graph at
    R's render size, batch 1), and of the synthesis alone (a plain G call)."""
    import copy
    import tempfile

    from ..export.graphs import generator_graphs, refiner_graph
    from ..export.onnx import export_graph
    from ..runtime.ort import open_session

    size = refiner.config.render_size
    refiner, generator = copy.deepcopy(refiner).cpu(), copy.deepcopy(generator).cpu()  # timed on this machine's CPU
    sessions = {}
    with tempfile.TemporaryDirectory() as folder:
        for graph in (refiner_graph(refiner), generator_graphs(generator, (size,))[1]):
            export_graph(graph, Path(folder) / f"{graph.name}.onnx")
            sessions[graph.name] = open_session(Path(folder) / f"{graph.name}.onnx")
        wplus = generator.w_avg[:, None, :].expand(1, generator.config.n_slots, -1).numpy()
        photo = sessions[f"synthesis_{size}"].run(None, {"wplus": wplus})[0]

        def timed(run: Callable[[], object]) -> float:
            run()  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
            return sorted(times)[len(times) // 2] * 1000

        def iteration() -> None:
            image = sessions[f"synthesis_{size}"].run(None, {"wplus": wplus})[0]
            sessions["refiner"].run(None, {"photo": photo, "reconstruction": image})

        return {"ms_per_iteration": timed(iteration),
                "ms_per_generator_call": timed(lambda: sessions[f"synthesis_{size}"].run(None, {"wplus": wplus}))}
