"""Prompts -> CLIP text embeddings -> W+: a face from text, and edit directions.

* ``embed_prompts``: unit-norm E_T embeddings; a prompt longer than the 77-token context is cut and a
  notice says so (it reaches the user through ``Result.notices``), never silently.
* ``text_latent``: text to face, ``W+ = w_c + f(e_T - e_c)``: the mapper reads a text embedding in place
  of an image embedding (shared CLIP space, arXiv 2210.04506). CLIP's image/text gap makes this a rough
  face; the CLIP-guided path in refine.py is the slow, closer alternative.
* ``edit_direction``: ``delta = f(e_T(target)) - f(e_T(source))``. The difference of two text codes
  cancels most of the image/text gap that a single text code carries. The source is a neutral prompt
  (``DEFAULT_SOURCE``) or, optionally, an image embedding (e.g. the photo's own). When the two
  embeddings are equal (same prompt, or prompts the tokenizer reads identically) delta is exactly 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .errors import InputError
from .models.mapper import Mapper

DEFAULT_SOURCE = "a face"
SOURCE_FROM_IMAGE = "<image>"  # edit source: the image embedding of the face being edited


def check_prompt(prompt: object, name: str = "prompt") -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"the {name} is empty; type a description such as 'a smiling woman with red hair'")
    return prompt.strip()


def embed_prompts(clip, prompts: list[str], encode_tokens: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, list[str]]:
    """(N,768) unit-norm text embeddings and the notices for prompts cut to the context length.

    ``encode_tokens``: another runner of the text tower for the (N,77) tokens (the ONNX Runtime backend).
    """
    prompts = [check_prompt(p) for p in prompts]
    tokens, truncated = clip.tokenize(prompts)
    if encode_tokens is not None:
        embeddings = encode_tokens(tokens)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported below as notices instead
            embeddings = clip.embed_texts(prompts)
    notices = [
        f"prompt truncated to {clip.context_length} tokens (CLIP's limit): {p[:60]!r}..."
        for p, cut in zip(prompts, truncated) if cut
    ]
    return embeddings.float(), notices


def vary_embedding(embedding: Tensor, scale: float, seed: int) -> Tensor:
    """embedding + a seeded random vector of norm ``scale``: different faces for one prompt (cf. LAFITE's
    perturbed text features); seed-determined through its own torch.Generator."""
    noise = torch.randn(embedding.shape, generator=torch.Generator().manual_seed(seed)).to(embedding)
    return embedding + scale * noise / noise.norm(dim=-1, keepdim=True)


@torch.no_grad()
def text_latent(mapper: Mapper, text_embedding: Tensor) -> Tensor:
    """(N,768) -> W+ (N,23,512) = w_c + f(e_T - e_c)."""
    return mapper(text_embedding)


@torch.no_grad()
def edit_direction(mapper: Mapper, target_embedding: Tensor, source_embedding: Tensor) -> Tensor:
    """delta (N,23,512) = f(target) - f(source); exactly zero where the two embeddings are equal."""
    if torch.equal(target_embedding, source_embedding):
        return torch.zeros_like(mapper(target_embedding))
    return mapper(target_embedding) - mapper(source_embedding)
