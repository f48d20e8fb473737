"""Training and evaluating the StrengthPredictor (``python -m celeblook train strength``).

Objective, from the original write-up: cos(E_I(G(w)), E_I(G(w + C delta))) = target (0.7) with
C = head(w, e_T, delta). G, E_I and the mapper are frozen; the gradient reaches the head through G's 256 px
exit and E_I. The loss compares ANGLES, (acos(similarity) - acos(target))^2: near C = 0 the similarity is
flat (1 - O(C^2)), so a loss on the similarity itself has no gradient there and a head that undershoots
collapses to C = 0; the angle grows linearly with C, so its gradient does not vanish.

Before the first step (not on resume) the head's log edit size is calibrated from the bisection oracle on
``calibration_pairs`` training pairs (StrengthPredictor.calibrate), so training starts from the best
"constant edit size" head instead of spending steps on the scale of the latent space.

Data: w = truncated mapping of seeded z; delta = the text direction of a prompt drawn from the shipped prompt
bank's training split (celeblook.data: every 5th prompt is held out). Text embeddings and directions of the
whole bank are computed once per run. Every random draw comes from one seeded torch.Generator whose state
is checkpointed, so ``--resume`` continues exactly where an uninterrupted run would be.

Evaluation (OUT/metrics.json, and ``python -m celeblook eval``) uses fresh latents with the held-out prompts:
the mean |similarity - target| of the learned C, of the best single constant C (chosen on training pairs) and
of the bisection oracle, with the generator calls each method needs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..data import prompt_split
from ..limits import C_MAX, TARGET_SIMILARITY
from ..models.heads_io import save_weights
from ..models.strength import STRENGTH_KIND, StrengthConfig, StrengthPredictor
from ..presets import StrengthTrainConfig
from ..strength_oracle import OracleStrength, oracle_strength
from .common import MetricsLog, autocast, progress_bar, resume_from, rng_state, save_checkpoint

WEIGHTS_NAME = "strength.safetensors"
CHECKPOINT_NAME = "strength_checkpoint.safetensors"
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out latents come from their own stream, never seen in training


def edit_embeddings(
    generator, encoder, wplus: Tensor, delta: Tensor, strength: Tensor | float, size: int = 256,
    reference: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(E_I(G(w)), E_I(G(w + C * delta))), each (N,768) unit norm. ``reference``: E_I(G(w)) when already known."""
    strength = torch.as_tensor(strength, dtype=wplus.dtype, device=wplus.device).reshape(-1, 1, 1)
    if reference is None:
        reference = encoder.embed_tensor(generator(wplus, size=size))
    return reference, encoder.embed_tensor(generator(wplus + strength * delta, size=size))


def edit_similarity(
    generator, encoder, wplus: Tensor, delta: Tensor, strength: Tensor | float, size: int = 256,
    reference: Tensor | None = None,
) -> Tensor:
    """cos(E_I(G(w)), E_I(G(w + C * delta))) per sample, (N,).

    Differentiable with respect to ``strength`` (and the latents); the caller picks no_grad where it can.
    """
    reference, edited = edit_embeddings(generator, encoder, wplus, delta, strength, size, reference)
    return (reference * edited).sum(dim=-1)


def edit_angle(
    generator, encoder, wplus: Tensor, delta: Tensor, strength: Tensor | float, size: int = 256,
    reference: Tensor | None = None,
) -> Tensor:
    """The angle between E_I(G(w)) and E_I(G(w + C * delta)), radians, (N,): acos of ``edit_similarity``.

    Computed as 2 atan2(|a - b|, |a + b|), which keeps its gradient for nearly equal embeddings, where
    acos(a . b) rounds to acos(1) in float32 and its derivative is infinite.
    """
    reference, edited = edit_embeddings(generator, encoder, wplus, delta, strength, size, reference)
    return 2 * torch.atan2((reference - edited).norm(dim=-1), (reference + edited).norm(dim=-1))


@torch.no_grad()
def torch_oracle(
    generator, encoder, wplus: Tensor, delta: Tensor, target: float = TARGET_SIMILARITY, c_max: float = C_MAX,
    tol: float = 0.005, max_iter: int = 20, size: int = 256, reference: Tensor | None = None,
) -> OracleStrength:
    """The bisection oracle (celeblook.strength_oracle) on the torch models, for one latent (23,512) or (1,23,512).

    Calls: one render of the face (none when its embedding is passed as ``reference``), then one per probe.
    """
    wplus, delta = wplus.reshape(1, *wplus.shape[-2:]), delta.reshape(1, *delta.shape[-2:])
    calls = 0
    if reference is None:
        reference, calls = encoder.embed_tensor(generator(wplus, size=size)), 1
    return oracle_strength(lambda c: float(edit_similarity(generator, encoder, wplus, delta, c, size, reference)[0]),
                           target, c_max, tol, max_iter, calls)


@dataclass
class EditBank:
    """The prompt bank with its text embeddings (P,768) and edit directions (P,23,512), and its split."""

    prompts: list[str]
    text_embeddings: Tensor
    deltas: Tensor
    train: list[int]
    held_out: list[int]


def build_edit_bank(
    prompts: list[str], embed_texts: Callable[[list[str]], Tensor], direction: Callable[[Tensor], Tensor]
) -> EditBank:
    """``embed_texts``: prompts -> (P,768) unit-norm; ``direction``: target embeddings -> deltas (P,23,512)."""
    train_prompts, _ = prompt_split(prompts)
    train_set = set(train_prompts)
    with torch.no_grad():
        embeddings = embed_texts(prompts)
        deltas = direction(embeddings)
    train = [i for i, p in enumerate(prompts) if p in train_set]
    held_out = [i for i, p in enumerate(prompts) if p not in train_set]
    return EditBank(prompts, embeddings, deltas, train, held_out)


def sample_pairs(generator, bank: EditBank, indices: list[int], n: int, psi: float, rng: torch.Generator):
    """n (latent, prompt) pairs: W+ (n,23,512), text embeddings (n,768), deltas (n,23,512)."""
    z = torch.randn(n, generator.config.style_dim, generator=rng).to(generator.w_avg.device)
    pick = torch.tensor(indices)[torch.randint(len(indices), (n,), generator=rng)]
    with torch.no_grad():
        wplus = generator.z_to_wplus(z, psi)
    return wplus, bank.text_embeddings[pick.to(z.device)], bank.deltas[pick.to(z.device)]


@torch.no_grad()
def calibrate(predictor: StrengthPredictor, generator, encoder, bank: EditBank, config: StrengthTrainConfig,
              rng: torch.Generator) -> float:
    """Sets the head's log edit size from the oracle C of ``config.calibration_pairs`` training pairs."""
    wplus, _, delta = sample_pairs(generator, bank, bank.train, config.calibration_pairs, config.psi, rng)
    c_max = predictor.config.c_max
    strengths = torch.tensor([
        torch_oracle(generator, encoder, w, d, config.target, c_max, size=config.size).strength
        for w, d in zip(wplus, delta)
    ], device=delta.device)
    return predictor.calibrate(strengths, delta)


def train_strength(
    predictor: StrengthPredictor, generator, encoder, bank: EditBank, config: StrengthTrainConfig, out: Path,
    resume: bool = False, show_progress: bool = True, sidecar: dict | None = None,
) -> Path:
    """Trains ``predictor`` in place; writes OUT/strength.safetensors (+ .json), a checkpoint and metrics.jsonl."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=config.lr)
    start = 0
    checkpoint = out / CHECKPOINT_NAME
    if resume:
        start = resume_from(checkpoint, {"model": predictor, "optimizer": optimizer}, {"data": rng})["step"]
    elif config.calibration_pairs:
        calibrate(predictor, generator, encoder, bank, config, rng)
    metrics = MetricsLog(out / "metrics.jsonl")
    bar = progress_bar(config.steps, start, "strength", show_progress)
    predictor.train()
    for step in range(start, config.steps):
        wplus, text, delta = sample_pairs(generator, bank, bank.train, config.batch, config.psi, rng)
        with torch.no_grad(), autocast(wplus.device, config.amp):
            reference = encoder.embed_tensor(generator(wplus, size=config.size)).float()
        strength = predictor(wplus, text, delta)
        with autocast(wplus.device, config.amp):
            angle = edit_angle(generator, encoder, wplus, delta, strength, config.size, reference).float()
        loss = (angle - math.acos(config.target)).pow(2).mean()
        similarity = angle.detach().cos()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        # the similarity falls steeply once an edit overshoots; clipping keeps one bad batch from throwing
        # the head far from the calibrated start
        grad_norm = torch.nn.utils.clip_grad_norm_(predictor.parameters(), config.grad_clip)
        optimizer.step()
        metrics.write(step + 1, loss=loss.item(), grad_norm=grad_norm.item(), strength=strength.mean().item(),
                      similarity=similarity.mean().item())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", C=f"{strength.mean().item():.3f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(checkpoint, {
                "model": predictor.state_dict(), "optimizer": optimizer.state_dict(),
                "rng": rng_state({"data": rng}), "step": step + 1,
            })
    bar.close()
    predictor.eval()
    weights = out / WEIGHTS_NAME
    save_weights(weights, predictor.state_dict(), {
        "kind": STRENGTH_KIND, "config": predictor.config.to_dict(),
        "training": asdict(config),
        **(sidecar or {}),
    })
    return weights


@torch.no_grad()
def evaluate_strength(
    predictor: StrengthPredictor, generator, encoder, bank: EditBank, n_pairs: int = 32, target: float = TARGET_SIMILARITY,
    psi: float = 0.7, size: int = 256, seed: int = 0, grid: int = 21, oracle_tol: float = 0.005,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, float]:
    """Learned vs best fixed vs oracle C on n held-out (latent, prompt) pairs; errors are |similarity - target|."""
    c_max = predictor.config.c_max
    # the best constant, chosen on training pairs
    rng = torch.Generator().manual_seed(seed + HELD_OUT_SEED_OFFSET)
    wplus, _, delta = sample_pairs(generator, bank, bank.train, n_pairs, psi, rng)
    reference = encoder.embed_tensor(generator(wplus, size=size))
    candidates = torch.linspace(0.0, c_max, grid)
    train_err = torch.stack([
        (edit_similarity(generator, encoder, wplus, delta, float(c), size, reference) - target).abs().mean()
        for c in candidates
    ])
    fixed = float(candidates[train_err.argmin()])
    # held-out pairs: fresh latents, held-out prompts
    wplus, text, delta = sample_pairs(generator, bank, bank.held_out, n_pairs, psi, rng)
    reference = encoder.embed_tensor(generator(wplus, size=size))
    learned_c = predictor(wplus, text, delta).float()
    err_learned = (edit_similarity(generator, encoder, wplus, delta, learned_c, size, reference) - target).abs()
    err_fixed = (edit_similarity(generator, encoder, wplus, delta, fixed, size, reference) - target).abs()
    oracles = []
    for i in range(n_pairs):
        oracles.append(torch_oracle(generator, encoder, wplus[i], delta[i], target, c_max, oracle_tol, size=size))
        if progress is not None:
            progress((i + 1) / n_pairs, "oracle strength by bisection")
    oracle_c = torch.tensor([o.strength for o in oracles], device=learned_c.device)
    err_oracle = torch.tensor([abs(o.similarity - target) for o in oracles], device=learned_c.device)
    # where even C = c_max stays above the target every method answers about c_max: the comparison that
    # means something is on the pairs the oracle brackets
    bracketed = torch.tensor([o.bracketed for o in oracles], device=learned_c.device)
    on_bracketed = {f"abs_err_{name}_bracketed": err[bracketed].mean().item() if bracketed.any() else math.nan
                    for name, err in (("learned", err_learned), ("fixed", err_fixed), ("oracle", err_oracle))}
    return {
        "abs_err_learned": err_learned.mean().item(),
        "abs_err_fixed": err_fixed.mean().item(),
        "abs_err_oracle": err_oracle.mean().item(),
        **on_bracketed,
        "bracketed_share": bracketed.float().mean().item(),
        "fixed_strength": fixed,
        "learned_strength_mean": learned_c.mean().item(),
        "learned_vs_oracle_strength_abs_err": (learned_c - oracle_c).abs().mean().item(),
        "oracle_strength_mean": oracle_c.mean().item(),
        "oracle_strength_std": oracle_c.std().item(),
        "oracle_unbracketed": sum(not o.bracketed for o in oracles),
        "generator_calls_learned": 1,
        "generator_calls_fixed": 1,
        "generator_calls_oracle": sum(o.generator_calls for o in oracles) / n_pairs,
        "n_pairs": n_pairs,
        "target": target,
    }


def strength_line(metrics: dict) -> str:
    """``evaluate_strength``'s figures (``train strength`` and ``train all`` print it)."""
    return (f"held-out |similarity - {metrics['target']}| on the {metrics['bracketed_share']:.0%} of {metrics['n_pairs']} "
            f"pairs the oracle brackets: learned {metrics['abs_err_learned_bracketed']:.4f} (1 G call), best fixed "
            f"C={metrics['fixed_strength']:.2f} {metrics['abs_err_fixed_bracketed']:.4f} (1 G call), oracle "
            f"{metrics['abs_err_oracle_bracketed']:.4f} ({metrics['generator_calls_oracle']:.1f} G calls)")


def write_metrics(path: Path, metrics: dict) -> None:
    Path(path).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def text_edit_bank(clip, mapper, prompts: list[str] | None = None) -> EditBank:
    """The shipped prompt bank with the pipeline's edit directions f(E_T(prompt)) - f(E_T(DEFAULT_SOURCE))."""
    from ..data import load_prompts
    from ..text.prompts import DEFAULT_SOURCE

    with torch.no_grad():
        source = mapper(clip.embed_texts([DEFAULT_SOURCE]))
    return build_edit_bank(load_prompts() if prompts is None else prompts, clip.embed_texts,
                           lambda targets: mapper(targets) - source.to(targets.device))


def strength_job(
    preset, out: Path, config: StrengthTrainConfig, mapper_path: Path | None = None, resume: bool = False,
    show_progress: bool = True, log: Callable[[str], None] = print, student: Path | None = None,
) -> dict[str, float]:
    """``python -m celeblook train strength``: the preset's G, the trained mapper's text directions
    (``mapper_path``, default ``weights_dir()/<preset>/mapper.safetensors``; tiny falls back to its seeded
    mapper), the shipped prompt bank, and as E_I the image encoder the pipeline serves with these heads:
    ``student`` where given, else the factory's choice for the mapper's folder (a trained student beside it or
    the preset's installed one, else the teacher's tower). The head's C is judged by the similarity that E_I
    measures, so it must learn on the same one. Writes OUT/strength.safetensors and OUT/metrics.json (held-out
    errors of learned, best fixed and oracle C, with the generator calls of each); returns the metrics."""
    from ..text.prompts import DEFAULT_SOURCE
    from .common import serving_models

    models = serving_models(preset, "strength head", mapper_path, student, config.device, log)
    generator, mapper, clip, encoder = models.generator, models.mapper, models.clip, models.encoder
    bank = text_edit_bank(clip, mapper)
    torch.manual_seed(config.seed)  # the head's initial weights
    predictor = StrengthPredictor(StrengthConfig(c_max=config.c_max), w_avg=generator.w_avg.cpu()).to(models.device)
    sidecar = {"provenance": {**models.provenance, "source_prompt": DEFAULT_SOURCE}}
    weights = train_strength(predictor, generator, encoder, bank, config, out, resume, show_progress, sidecar)
    log(f"wrote {weights}; evaluating on {config.eval_pairs} held-out (latent, prompt) pairs")
    metrics = evaluate_strength(predictor, generator, encoder, bank, config.eval_pairs, config.target, config.psi,
                                config.size, config.seed)
    write_metrics(Path(out) / "metrics.json", {**metrics, "preset": preset.label})
    return metrics
