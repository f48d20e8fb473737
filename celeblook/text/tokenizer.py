"""CLIP's byte-level BPE tokenizer (ViT-L/14's: lower-case cleaning, 77-token context), without torch.

It gives the same ids as open_clip's ``SimpleTokenizer`` (tests/test_tokenizer.py compares them), so prompts
can be encoded where only numpy and onnxruntime are installed. A prompt goes through four steps:

1. cleaning: ftfy's repairs, HTML entities unescaped twice, whitespace collapsed, lower case;
2. splitting (``PIECES``) into letter runs, single digits, English contractions and runs of other symbols;
3. byte-pair merging: each piece's UTF-8 bytes, written with one printable stand-in character per byte and the
   last marked end-of-word, are merged pair by pair, the lowest-ranked pair of the merges file first;
4. ids: [start] + the pieces' ids + [end], cut to the context (the end kept) and zero-padded.

The vocabulary file is CLIP's (``celeblook/data``): a version line, then one merge per line.
"""

from __future__ import annotations

import functools
import gzip
import html
from collections.abc import Sequence
from pathlib import Path

import ftfy
import numpy as np
import regex

from ..data import VOCAB_FILE
from ..errors import InputError

CONTEXT_LENGTH = 77
START_OF_TEXT, END_OF_TEXT = "<start_of_text>", "<end_of_text>"
END_OF_WORD = "</w>"
N_MERGES = 49152 - 256 - 2  # CLIP's 49152 symbols less the 256 bytes and the 2 special tokens (the file has more)
CACHE_WORDS = 2**16  # bounded: a server tokenises whatever people type

# The special tokens' names (typed by hand they become those tokens, as in CLIP), contractions, letter runs, one
# digit at a time, runs of anything else but whitespace. IGNORECASE as in CLIP: beyond the (already lower-case)
# letters it changes which classes match characters whose case variants are letters, such as U+0345.
PIECES = regex.compile(
    "|".join([START_OF_TEXT, END_OF_TEXT, "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", r"\p{L}+", r"\p{N}", r"[^\s\p{L}\p{N}]+"]),
    regex.IGNORECASE,
)


def byte_symbols() -> dict[int, str]:
    """Byte -> the character standing for it, in CLIP's vocabulary order (its first 256 ids).

    Printable Latin-1 bytes stand for themselves and come first; the other 68 (controls, space, soft hyphen)
    get the characters from U+0100 on, so no symbol is whitespace or a control and BPE sees one symbol per byte.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}


def clean(text: str) -> str:
    """CLIP's 'lower' cleaning: ftfy, HTML entities, whitespace, case.

    ftfy unescapes entities itself unless the text has tags; then the two passes here undo double escaping.
    """
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return " ".join(text.split()).lower()


class Tokenizer:
    """Prompts -> CLIP token ids; ``vocab``: a CLIP merges file (default: the packaged one)."""

    def __init__(self, vocab: Path | None = None, context_length: int = CONTEXT_LENGTH):
        lines = gzip.decompress(Path(vocab or VOCAB_FILE).read_bytes()).decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]  # line 0 is the version
        self._bytes = byte_symbols()
        symbols = list(self._bytes.values())
        symbols += [s + END_OF_WORD for s in symbols] + ["".join(pair) for pair in merges] + [START_OF_TEXT, END_OF_TEXT]
        self._ids = {symbol: i for i, symbol in enumerate(symbols)}
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._word_ids = functools.lru_cache(maxsize=CACHE_WORDS)(self._merge)
        self.context_length = context_length
        self.vocab_size = len(symbols)
        self.sot = self._ids[START_OF_TEXT]
        self.eot = self._ids[END_OF_TEXT]

    def encode(self, text: str) -> list[int]:
        """BPE ids of ``text``, without the start and end tokens."""
        ids: list[int] = []
        for piece in PIECES.findall(clean(text)):
            if piece in (START_OF_TEXT, END_OF_TEXT):
                ids.append(self._ids[piece])
            else:
                ids.extend(self._word_ids("".join(self._bytes[b] for b in piece.encode("utf-8"))))
        return ids

    def _merge(self, word: str) -> tuple[int, ...]:
        """A word's ids: its symbols' adjacent pairs merged, the lowest rank first, while any pair has a rank."""
        symbols = [*word[:-1], word[-1] + END_OF_WORD]
        while len(symbols) > 1:
            best = min(zip(symbols, symbols[1:]), key=lambda pair: self._ranks.get(pair, N_MERGES))  # N_MERGES: unranked
            if best not in self._ranks:
                break
            merged, i = [], 0
            while i < len(symbols):  # every occurrence, left to right
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(self._ids[s] for s in symbols)

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, list[bool]]:
        """((N, context_length) int64 ids [start, ..., end, 0, ...], whether each text was cut to fit).

        A cut text keeps its first ``context_length - 1`` tokens and the end token. A text that yields no token
        at all (empty, whitespace, only characters CLIP drops) raises InputError.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens = np.zeros((len(texts), self.context_length), dtype=np.int64)
        cut = []
        for row, text in zip(tokens, texts):
            ids = self.encode(text)
            if not ids:
                raise InputError(f"the prompt {text!r} has no words the text encoder can read")
            ids = [self.sot, *ids, self.eot]
            cut.append(len(ids) > self.context_length)
            ids = ids[: self.context_length - 1] + [self.eot] if cut[-1] else ids
            row[: len(ids)] = ids
        return tokens, cut


def eot_length(tokens: np.ndarray) -> int:
    """Token columns up to and including the batch's last end-of-text token (EOT has the largest id: argmax).

    Torch tensors work too (only ``argmax`` and ``max`` are used).
    """
    return int(tokens.argmax(-1).max()) + 1


@functools.cache
def default_tokenizer() -> Tokenizer:
    """The packaged vocabulary's tokenizer with the 77-token context, built once (reading it takes ~0.3 s)."""
    return Tokenizer()
