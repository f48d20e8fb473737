"""Data shipped with the package: the bank of edit prompts used to train and evaluate the strength head,
CLIP's byte-pair vocabulary (``bpe_simple_vocab_16e6.txt.gz``) for ``celeblook.text.tokenizer`` and the web page, and
the weights manifest (``weights_manifest.json``, read by ``celeblook.hub.weights``) and the presets
(``presets/<name>.toml``, read by ``celeblook.presets``).

The vocabulary is a byte-identical copy of the file packaged with open_clip (MIT licence; it comes from
OpenAI's CLIP, also MIT), kept here so that text can be tokenised without torch or open_clip installed.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

HELD_OUT_EVERY = 5  # every 5th prompt (0-based index 4, 9, 14, ...) is held out
VOCAB_FILE = Path(__file__).with_name("bpe_simple_vocab_16e6.txt.gz")  # package data: a plain file, installed or not


def load_prompts() -> list[str]:
    """The prompt bank (celeblook/data/prompts.txt), in file order; comments and blank lines skipped."""
    text = files(__name__).joinpath("prompts.txt").read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def prompt_split(prompts: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(train, held_out): a deterministic split of the bank; held out = every ``HELD_OUT_EVERY``-th prompt."""
    prompts = load_prompts() if prompts is None else prompts
    held = [p for i, p in enumerate(prompts) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    train = [p for i, p in enumerate(prompts) if i % HELD_OUT_EVERY != HELD_OUT_EVERY - 1]
    return train, held
