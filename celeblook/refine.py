"""Optimisation in W+ at the generator's 256 px exit: inversion refinement and CLIP-guided text to face.

Both optimise the 22 used W+ slots with Adam from a start code (slot 22 is dead and stays as it is),
rendering at 256 px because CLIP looks at 224 px anyway and the 256 exit costs half of a 1024 render.
There is nothing random in either: the result is fully determined by the inputs. Latents and embeddings come
in and go out as numpy arrays, as the pipeline holds them; only this module needs torch's gradients.

* ``refine_inversion``: start = f(E_I(photo)) (or the mean latent without a mapper). Loss =
  ``w_pixel * MSE(G(w), photo@256) + w_clip * (1 - cos(E_I(G(w)), E_I(photo))) + w_pull * |w - start|^2``.
  The pixel term restores what CLIP does not encode (identity, pose, colours), the CLIP term keeps the
  semantics, the pull keeps the code near the mapper's in-distribution answer, so edits still behave.
* ``text_to_face_optimize``: maximise ``cos(E_I(G(w)), e_T)`` with ``w_pull * |w - w_avg|^2``; the slow
  path for text to face that needs no trained mapper.
* ``edit_optimize``: a text edit without a mapper: ``weight * (1 - cos(E_I(G(w)), e_T(target)))`` plus a
  pixel term and a pull toward the start face, so the person stays while the prompt's attribute grows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

Progress = Callable[[float, str], None]
REFINE_SIZE = 256


@dataclass
class Optimized:
    wplus: np.ndarray  # (1,23,512) float32
    losses: list[float]  # loss before each step, then the loss of the returned code
    generator_calls: int


def photo_to_tensor(photo: Image.Image, size: int = REFINE_SIZE) -> Tensor:
    """An aligned photo -> (1,3,size,size) in [-1,1], the generator's range (Lanczos resize)."""
    image = photo.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).reshape(size, size, 3)
    return pixels.permute(2, 0, 1)[None].float() / 127.5 - 1.0


# seconds per optimisation step, by generator: measured by every optimisation (and ``calibrate``), so a slow
# request can say how long it will take before it starts
_SECONDS_PER_STEP: dict[int, float] = {}


def _tensor(generator, x: np.ndarray | Tensor) -> Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=generator.w_avg.device)


def optimize_wplus(
    generator, start: Tensor, loss_fn: Callable[[Tensor, Tensor], Tensor], steps: int, lr: float,
    progress: Progress | None = None, label: str = "optimising",
) -> Optimized:
    """Adam on the used slots of ``start`` (1,23,512); ``loss_fn(wplus, image@256) -> scalar``."""
    used = generator.config.n_slots - 1
    free = start[:, :used].detach().clone().requires_grad_(True)
    dead = start[:, used:].detach()
    optimizer = torch.optim.Adam([free], lr=lr)
    losses = []
    started = time.perf_counter()
    for step in range(steps + 1):
        with torch.set_grad_enabled(step < steps):
            wplus = torch.cat([free, dead], dim=1)
            loss = loss_fn(wplus, generator(wplus, size=REFINE_SIZE))
        losses.append(loss.item())
        if step == steps:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        per_step = (time.perf_counter() - started) / (step + 1)
        _SECONDS_PER_STEP[id(generator)] = per_step
        if progress is not None:
            left = per_step * (steps - step - 1)
            progress((step + 1) / steps, f"{label}: step {step + 1}/{steps}, loss {losses[-1]:.4f}, ~{duration(left)} left")
    return Optimized(torch.cat([free, dead], dim=1).detach().float().cpu().numpy(), losses, steps + 1)


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def seconds_per_step(generator) -> float | None:
    """The last measured time of one optimisation step with ``generator`` on this machine, if any."""
    return _SECONDS_PER_STEP.get(id(generator))


def calibrate(generator, encoder, steps: int = 2) -> float:
    """Measures one optimisation step (the first of ``steps`` includes warm-up) with a CLIP term, as the slow
    paths take; the app runs it in the background at start when its requests would take a slow path."""
    start = generator.w_avg[:, None, :].expand(1, generator.config.n_slots, -1).cpu().numpy()
    embedding = np.eye(1, encoder.embed_dim, dtype=np.float32)  # any unit vector: the cost does not depend on it
    text_to_face_optimize(generator, encoder, embedding, start, steps)
    return _SECONDS_PER_STEP[id(generator)]


def refine_inversion(
    generator, encoder, photo: Image.Image, start: np.ndarray, steps: int, lr: float = 0.01,
    w_pixel: float = 1.0, w_clip: float = 1.0, w_pull: float = 0.1, progress: Progress | None = None,
) -> Optimized:
    """``photo``: the aligned crop; ``start``: (1,23,512)."""
    photo = photo_to_tensor(photo).to(generator.w_avg.device)
    with torch.no_grad():
        target_embedding = encoder.embed_tensor(photo)
    start = _tensor(generator, start)

    def loss_fn(wplus: Tensor, image: Tensor) -> Tensor:
        clip = 1 - F.cosine_similarity(encoder.embed_tensor(image), target_embedding, dim=-1).mean()
        pull = (wplus - start).pow(2).mean()
        return w_pixel * F.mse_loss(image, photo) + w_clip * clip + w_pull * pull

    return optimize_wplus(generator, start, loss_fn, steps, lr, progress, "refining the inversion")


def text_to_face_optimize(
    generator, encoder, text_embedding: np.ndarray, start: np.ndarray, steps: int, lr: float = 0.02,
    w_pull: float = 0.05, progress: Progress | None = None,
) -> Optimized:
    """Maximise CLIP's agreement of G(w) with the prompt, held near the mean latent."""
    w_avg = generator.w_avg[:, None, :]
    text_embedding, start = _tensor(generator, text_embedding), _tensor(generator, start)

    def loss_fn(wplus: Tensor, image: Tensor) -> Tensor:
        score = F.cosine_similarity(encoder.embed_tensor(image), text_embedding, dim=-1).mean()
        return (1 - score) + w_pull * (wplus - w_avg).pow(2).mean()

    return optimize_wplus(generator, start, loss_fn, steps, lr, progress, "CLIP-guided text to face")


EDIT_TEXT_GAIN = 5.0  # the manual strength C (0..0.8 on the slider) times this weighs the text term against the pixels


def edit_optimize(
    generator, encoder, start: np.ndarray, text_embedding: np.ndarray, strength: float, steps: int, lr: float = 0.02,
    w_pixel: float = 1.0, w_pull: float = 0.1, progress: Progress | None = None,
) -> Optimized:
    """Move ``start`` (1,23,512) toward the prompt in CLIP space, held near the start face's pixels and code.

    ``strength`` is the manual C: it weighs the text term (``EDIT_TEXT_GAIN * C``); at C = 0 the start is the
    optimum and stays exactly where it is.
    """
    start, text_embedding = _tensor(generator, start), _tensor(generator, text_embedding)
    with torch.no_grad():
        start_image = generator(start, size=REFINE_SIZE)

    def loss_fn(wplus: Tensor, image: Tensor) -> Tensor:
        text = 1 - F.cosine_similarity(encoder.embed_tensor(image), text_embedding, dim=-1).mean()
        keep = w_pixel * F.mse_loss(image, start_image) + w_pull * (wplus - start).pow(2).mean()
        return EDIT_TEXT_GAIN * strength * text + keep

    return optimize_wplus(generator, start, loss_fn, steps, lr, progress, "CLIP-guided edit")
