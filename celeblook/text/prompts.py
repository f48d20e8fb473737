"""Prompts -> CLIP text embeddings -> W+: a face from text, and edit directions.

* ``embed_prompts``: unit-norm E_T embeddings; a prompt longer than the 77-token context is cut and a
  notice says so (it reaches the user through ``Result.notices``), never silently.
* ``check_prompt``: the one check of a prompt a person typed: text with something to read in it (zero-width
  and control characters do not count), whitespace collapsed, cut to ``PROMPT_MAX_CHARS`` with a notice.
* ``edit_direction``: ``delta = f(e_T(target)) - f(e_T(source))``. The difference of two text codes
  cancels most of the image/text gap that a single text code carries. The source is a neutral prompt
  (``DEFAULT_SOURCE``) or, optionally, an image embedding (e.g. the photo's own). When the two
  embeddings are equal (same prompt, or prompts the tokenizer reads identically) delta is exactly 0.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from ..engine import Engine
from ..errors import InputError
from ..seeds import seeded_normal
from .tokenizer import default_tokenizer

DEFAULT_SOURCE = "a face"
SOURCE_FROM_IMAGE = "<image>"  # edit source: the image embedding of the face being edited
PROMPT_MAX_CHARS = 1000  # a guard: CLIP reads only 77 tokens (~300 characters) and says so; more never reaches it


def check_prompt(prompt: object, name: str = "prompt") -> tuple[str, list[str]]:
    """(the cleaned prompt, notices); InputError for anything that is not text with visible characters."""
    if not isinstance(prompt, str):
        raise InputError(f"the {name} must be text, got {type(prompt).__name__}")
    # zero-width and control characters (categories Cf, Cc) are invisible: a prompt of only those is empty
    visible = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in prompt)
    text = " ".join(visible.split())
    if not text:
        raise InputError(f"the {name} is empty; type a description such as 'a smiling woman with red hair'")
    if len(text) > PROMPT_MAX_CHARS:
        return text[:PROMPT_MAX_CHARS], [f"the {name} was cut to its first {PROMPT_MAX_CHARS} characters"]
    return text, []


def embed_prompts(engine: Engine, prompts: list[str]) -> tuple[np.ndarray, list[str]]:
    """(N,768) unit-norm text embeddings and the notices for prompts cut to the context length."""
    tokenizer = default_tokenizer()
    tokens, truncated = tokenizer(prompts)
    notices = [
        f"prompt truncated to {tokenizer.context_length} tokens (CLIP's limit): {p[:60]!r}..."
        for p, cut in zip(prompts, truncated) if cut
    ]
    return engine.embed_tokens(tokens).astype(np.float32), notices


def vary_embedding(embedding: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """embedding + a seeded random vector of norm ``scale``: different faces for one prompt (cf. LAFITE's
    perturbed text features); the seed's stream is celeblook.seeds', so the browser page varies it alike."""
    noise = seeded_normal(seed, embedding.shape[-1])
    return (embedding + np.float32(scale) * noise / np.linalg.norm(noise)).astype(np.float32)


def edit_direction(engine: Engine, target_embedding: np.ndarray, source_embedding: np.ndarray) -> np.ndarray:
    """delta (N,23,512) = f(target) - f(source); exactly zero where the two embeddings are equal."""
    if np.array_equal(target_embedding, source_embedding):
        return np.zeros_like(engine.map(target_embedding))
    return engine.map(target_embedding) - engine.map(source_embedding)
