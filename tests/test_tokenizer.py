"""celeblook.text.tokenizer gives open_clip's ViT-L-14 ids and cut flags, and needs neither torch nor open_clip."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import numpy as np
import open_clip
import procs
import pytest
import torch

from celeblook.data import VOCAB_FILE, load_prompts
from celeblook.errors import InputError
from celeblook.text.tokenizer import CONTEXT_LENGTH, Tokenizer, default_tokenizer, eot_length

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CASES = [case["text"] for case in
                 json.loads((REPO / "tests" / "web_fixtures" / "tokenizer_cases.json").read_text(encoding="utf-8"))["cases"]]
EXTRA_CASES = [
    # long: exactly at the context, one over, far over, one long word
    " ".join(["face"] * 75), " ".join(["face"] * 76), " ".join(["word"] * 500), "x" * 5000, "a, " * 300,
    "antidisestablishmentarianism" * 20,
    # mojibake ftfy repairs (the web fixtures leave these out)
    "cafÃ©", "SchÃ¶ne GrÃ¼ÃŸe", "â€œquotedâ€\x9d and itâ€™s", "Ã¼mlaut Ã‰cole", "The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t smile",
    # HTML entities: single, double, triple escaped, numeric, without semicolons
    "&amp;amp;lt;b&amp;amp;gt;", "<i>tags stop ftfy unescaping</i> &amp;amp;lt; &amp;amp;", "&nbsp;non&nbsp;breaking",
    "&#x1F600; &#128512;", "&lt;&gt;&amp;&quot;&apos;", "&eacute&copy",
    # emoji with joiners, flags, skin tones, variation selectors
    "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🧔🏿‍♂️ beard", "a face 😀😀😀😀😀😀",
    # CJK and other scripts
    "北京烤鸭 とうきょう 서울 한국", "漢字かなカナ交じり文", "ภาษาไทย ไม่มีช่องว่าง", "Ⓐ ⓑ Ⅻ ⅻ",
    # numbers
    "1234567890", "3.5e-10 -42 +7", "٣٤٥ ۶۷۸ १२३", "½¼¾ ²³ ①②",
    # whitespace and controls
    "\x00nul\x00", "next\u0085line", "\x0b\x0cvertical", "\u200b", "tab\tseparated\tvalues", "\r\n\r\n", "\u3000",
    # case folding and letters whose case variants matter to the split
    "İstanbul KELVIN K ﬃ", "a\u0345b", "\u0345", "ΣΑΣ σας", "ǅǆǄ",
    # the special tokens' names, CLIP's original spelling, a lone surrogate (ftfy replaces it)
    "a <end_of_text> b", "<|startoftext|>a<|endoftext|>", "a\ud800b",
]


def random_texts(n: int, seed: int = 0) -> list[str]:
    """Seeded strings of code points from scripts, symbols, combining marks, controls and the whole range."""
    rng = random.Random(seed)
    blocks = [(0x20, 0x7F), (0x80, 0x250), (0x300, 0x370), (0x370, 0x530), (0x600, 0x700), (0x900, 0xE80),
              (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x4F00), (0xAC00, 0xAD00), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF)]
    texts = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 40)):
            low, high = rng.choice(blocks) if rng.random() < 0.9 else (0, 0x110000)
            chars.append(chr(rng.randrange(low, high)) if rng.random() < 0.85 else " ")
        texts.append("".join(chars))
    return texts


@pytest.fixture(scope="module")
def reference():
    return open_clip.get_tokenizer("ViT-L-14")


def mismatches(texts: list[str], reference, tokenizer: Tokenizer) -> list[str]:
    """The texts whose ids, cut flag or no-token error differ from open_clip's (empty when all agree)."""
    wrong = []
    for text in texts:
        expected = reference.encode(text)
        if tokenizer.encode(text) != expected:
            wrong.append(f"encode {text!r}")
        elif not expected:
            with pytest.raises(InputError, match="has no words the text encoder can read"):
                tokenizer([text])
        else:
            tokens, cut = tokenizer([text])
            want = reference([text], context_length=tokenizer.context_length).numpy()
            if tokens.dtype != np.int64 or not np.array_equal(tokens, want) or cut != [len(expected) + 2 > tokenizer.context_length]:
                wrong.append(f"tokens or cut flag {text!r}")
    return wrong


@pytest.mark.parametrize("group", ["web fixtures", "prompt bank", "extra", "random"])
def test_ids_and_cut_flags_equal_open_clip(group, reference):
    texts = {"web fixtures": FIXTURE_CASES, "prompt bank": load_prompts(), "extra": EXTRA_CASES,
             "random": random_texts(300)}[group]
    assert mismatches(texts, reference, default_tokenizer()) == []


def test_a_batch_is_one_array_with_a_flag_per_text(reference):
    texts = ["a face", " ".join(["word"] * 200), "a smiling woman with red hair"]
    tokens, cut = default_tokenizer()(texts)
    assert tokens.shape == (3, CONTEXT_LENGTH) and tokens.dtype == np.int64
    assert np.array_equal(tokens, reference(texts).numpy()) and cut == [False, True, False]
    assert tokens[1, -1] == default_tokenizer().eot  # a cut text keeps its end token in the last column
    assert default_tokenizer()("a face")[0].shape == (1, CONTEXT_LENGTH)  # one string is one text, not its letters


def test_another_context_length_cuts_like_open_clip(reference):
    short = Tokenizer(context_length=8)
    texts = ["a face", "a smiling woman with red hair and freckles"]
    assert mismatches(texts, reference, short) == []
    assert short(texts)[1] == [False, True]


def test_vocabulary_is_open_clips_file_and_sizes():
    packaged = Path(open_clip.__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
    assert hashlib.sha256(VOCAB_FILE.read_bytes()).hexdigest() == hashlib.sha256(packaged.read_bytes()).hexdigest()
    tokenizer = Tokenizer(packaged)
    assert (tokenizer.vocab_size, tokenizer.sot, tokenizer.eot) == (49408, 49406, 49407)
    assert default_tokenizer() is default_tokenizer()


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u0345"])
def test_a_text_without_tokens_is_an_input_error(text):
    with pytest.raises(InputError, match=r"the prompt .* has no words the text encoder can read"):
        default_tokenizer()(["a face", text])


def test_eot_length_counts_columns_to_the_last_end_token():
    tokens, _ = default_tokenizer()(["a face", "a smiling woman with red hair"])
    assert eot_length(tokens) == 8 and (tokens[:, 8:] == 0).all()
    assert eot_length(torch.from_numpy(tokens)) == 8


BLOCKED_SCRIPT = """
import importlib.abc, json, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "open_clip", "timm"):
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, Blocked())
try:
    import torch
    sys.exit("the block does not work")
except ImportError:
    pass
from celeblook.text.tokenizer import default_tokenizer

tokens, cut = default_tokenizer()(json.loads(sys.argv[1]))
print(json.dumps({"tokens": tokens.tolist(), "cut": cut}))
"""


def test_tokenizing_works_without_torch_or_open_clip(reference):
    texts = ["a face", "cafÃ© &amp; 😀", " ".join(["word"] * 100)]
    run = procs.run([sys.executable, "-c", BLOCKED_SCRIPT, json.dumps(texts)], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout)
    assert got["tokens"] == reference(texts).tolist() and got["cut"] == [False, False, True]
