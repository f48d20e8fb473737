"""Write tokenizer_cases.json: prompts and open_clip's ViT-L-14 token ids, for the JavaScript tokenizer's parity test.

    .venv/bin/python tests/web_fixtures/make_tokenizer_cases.py

Hand-picked edge cases (unicode, punctuation, numbers, whitespace, HTML entities, ftfy's fixes, over-long
prompts) plus seeded random prompts built from the same ingredients. Prompts that ftfy's mojibake repair would
change are left out: web/src/tokenizer.js does not port that step (its header says so).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import ftfy
import open_clip

OUT = Path(__file__).with_name("tokenizer_cases.json")

HAND_PICKED = [
    "a face", "a smiling woman with red hair", "A SMILING WOMAN", "an old man with a grey beard and glasses",
    "", "   ", "\t\n  leading and trailing whitespace \r\n", "many     spaces\tand\ttabs\nand\nnewlines",
    "non\u00a0breaking\u2003em\u3000ideographic spaces", "line\u2028separator\u2029paragraph",
    "numbers 0 1 12 123 3.14159 1,000,000 2024-11-24 10:30pm", "١٢٣ arabic-indic digits ½ ⅓ ² ³ ④",
    "punctuation!!! ??? ... ;;; --- ___ *** ((())) [[]] {{}} <<>> @#$%^&*", "it's they're we've I'm you'll he'd",
    "IT'S THEY'RE WE'VE I'M YOU'LL HE'D", "don't can't won't shouldn't", "quotes “curly” and ‘single’ ‚low‛ „double‟",
    "café naïve résumé coöperate façade jalapeño", "Straße Ærøskøbing Łódź Dvořák İstanbul ΣΊΣΥΦΟΣ", "ﬁne ﬂower ﬀ ﬃ ﬄ ﬆ Ĳssel ǅ",
    "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ　１２３！", "ﾊﾝｶｸ halfwidth katakana", "日本語のテキスト 中文文本 한국어 텍스트",
    "emoji 😀😃😄 👩‍🦰 👍🏽 🇫🇷 ❤️", "math ∑ ∫ √ ∞ ≈ ≠ ≤ ≥ × ÷ ± ∂", "arrows → ← ↑ ↓ ⇒ and symbols © ® ™ § ¶ † ‡ •",
    "Привет мир", "שלום עולם", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Ελληνικά γράμματα",
    "combining e\u0301 a\u0308 o\u0302 vs precomposed é ä ô", "zero\u200bwidth\u200cjoiner\u200dspace",
    "bom\ufeffinside", "control\x01\x02\x07chars\x7f", "c1 \x80 \x85 \x91quoted\x92 \x96 \x9d controls",
    "terminal \x1b[31mred\x1b[0m escapes", "html &amp; &lt;b&gt; &quot;quoted&quot; &#39;apos&#39; &copy; &eacute;",
    "double escaped &amp;amp; &amp;lt;", "numeric &#65;&#x42;&#X43; &#128512; &#0; &#x80; &#11; &#1114112;",
    "no semicolon &amp &copy &notit; &ampxyz", "<b>bold</b> &amp; tags", "&unknownentity; & alone &",
    "<start_of_text> and <end_of_text> typed by hand", "<START_OF_TEXT>", "email me@example.com url https://x.org/a?b=1",
    "snake_case camelCase kebab-case PascalCase", "hashtags #selfie #nofilter @mention", "C++ C# F# .NET node.js",
    "1st 2nd 3rd 4th 100th", "$100 €50 £20 ¥1000 ₹500", "temperature -5°C 23°F", "50% off!!!", "x" * 100,
    "a " * 40, "supercalifragilisticexpialidocious antidisestablishmentarianism", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    " ".join(["word"] * 74), " ".join(["word"] * 75), " ".join(["word"] * 76), " ".join(["word"] * 200),
    "a photo of a person with " + ", ".join(f"feature number {i}" for i in range(40)),
    "tokens at the edge " + "! " * 80, "ÀÁÂÃÄÅ àáâãäå ÇçÑñ", "l'homme d'affaires aujourd'hui", "rock'n'roll o'clock",
    "'quoted' \"double\" `backtick`", "...leading dots", "trailing dots...", "ümlaut ÜMLAUT", "ǅungla",
    "Ⅻ roman numeral ⅻ", "superscript ⁵ subscript ₅", "ﬅ long s t", "Kelvin K sign and Å angstrom",
]

INGREDIENTS = [
    "a", "the", "face", "woman", "man", "smiling", "red", "hair", "blue", "eyes", "beard", "glasses", "old", "young",
    "happy", "sad", "angry", "surprised", "portrait", "photo", "of", "with", "and", "wearing", "hat", "makeup",
    "bald", "curly", "blonde", "freckles", "teenager", "child", "elderly", "Taylor", "Swift", "Obama", "Einstein",
    "café", "naïve", "Zoë", "Ñandú", "東京", "😀", "❤️", "ﬁ", "“", "”", "’", "&amp;", "&eacute;", "&#233;", "ｗｏｒｌｄ",
    "1", "22", "333", "4.5", "6,789", "-", "!", "?", "...", ",", ";", ":", "(", ")", "'s", "'re", "n't", "#", "@",
    "%", "$", "€", "/", "\\", "|", "~", "^", "*", "+", "=", "<", ">", "_", "\t", "\n", "  ", "\u00a0", "\u3000",
]


def random_prompt(rng: random.Random) -> str:
    n = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 90])
    glue = ["", " ", " ", " ", "  "]
    return "".join(rng.choice(INGREDIENTS) + rng.choice(glue) for _ in range(n))


def main() -> None:
    tokenizer = open_clip.get_tokenizer("ViT-L-14")
    rng = random.Random(20241124)
    prompts = list(HAND_PICKED) + [random_prompt(rng) for _ in range(200)]
    cases = []
    for prompt in prompts:
        if ftfy.fix_encoding(prompt) != prompt:
            continue  # mojibake repair is not ported (see the module docstring)
        ids = tokenizer([prompt], context_length=77)[0].tolist()
        cases.append({"text": prompt, "ids": ids, "encode_length": len(tokenizer.encode(prompt))})
    OUT.write_text(json.dumps({"tokenizer": "open_clip ViT-L-14 SimpleTokenizer", "open_clip": open_clip.__version__,
                               "context_length": 77, "cases": cases}, ensure_ascii=False, indent=0))
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
