"""Golden request -> result vectors: the Python pipeline on ONNX Runtime answers requests that tests/test_web.py
replays in the page (web/src/pipeline.js), so the page is held to what the Python pipeline does, not to maths
written again in the tests.

    python tests/web_golden.py SITE/models OUT.json     # the requests answered on a site's exported models

The pipeline runs on ``OrtEngine`` over the very files the site serves (fp32 graphs; the fp32 text encoder, which
made the page's prompt bank). A request is a verb, its positional arguments and its options by their Python
names; starts are JSON: ``{"wplus": base64 float32}``, ``{"prompt": {"text", "seed", "psi"}}`` or
``{"photo": {"synthetic": {"side", "seed"}, "aligned": true}}`` (a picture both sides make with
``synthetic_photo``). Each face of a result keeps its W+ (base64 float32), its scores and pixel statistics of its
8-bit image (``pixel_stats``). Identity distances are left out: the page has no dlib.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 256  # size does not change what is compared, and 256 px keeps the replay quick
TARGET = "a person with blonde hair"  # prompts in the page's curated bank: no text encoder download
BLOCKS = 8  # pixel statistics: means of an 8 x 8 grid of blocks per channel


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, np.float32).tobytes()).decode()


def f32(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32)


def synthetic_photo(side: int, seed: int) -> np.ndarray:
    """A smooth coloured picture with noise (uint8, side x side x 3): an 'aligned face' both sides can make."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 37), 128 + 100 * np.cos(y / 53), 255 * (x + y) / (2 * side)], -1)
    return np.clip(rgb + rng.normal(0, 20, rgb.shape), 0, 255).astype(np.uint8)


def pixel_stats(rgb: np.ndarray) -> dict:
    """Per-channel means and the 8 x 8 block means (uint8 RGB, H x W x 3): where the image differs, not just how much."""
    rgb = np.asarray(rgb, np.float64)
    side = rgb.shape[0] // BLOCKS
    blocks = rgb[: side * BLOCKS, : side * BLOCKS].reshape(BLOCKS, side, BLOCKS, side, 3).mean((1, 3))
    return {"mean": rgb.mean((0, 1)).tolist(), "blocks": blocks.tolist()}


def requests(w_avg: np.ndarray) -> list[dict]:
    """The replayed requests: every verb, each kind of start, every edit variant; some options left to the defaults."""
    rng = np.random.default_rng(21)
    wplus = [(rng.standard_normal((23, 512)) * 0.5 + w_avg).astype(np.float32) for _ in range(3)]
    return [
        {"verb": "random_faces", "args": [5], "options": {"count": 2, "size": SIZE}},  # psi: the default
        {"verb": "text_to_face", "args": ["a young man with a mohawk"], "options": {"seed": 3, "psi": 0.6, "size": SIZE}},
        {"verb": "invert", "args": [{"photo": {"synthetic": {"side": 1024, "seed": 7}, "aligned": True}}],
         "options": {"size": SIZE}},  # the refiner's own iteration count, where the site has one
        *({"verb": "invert", "args": [{"photo": {"synthetic": {"side": 1024, "seed": 7}, "aligned": True}}],
           "options": {"size": SIZE, "refine_iterations": k}} for k in (0, 3)),
        {"verb": "edit", "args": [{"wplus": b64(wplus[0])}, TARGET],
         "options": {"strengths": [0.3, "learned", "oracle"], "size": SIZE}},
        {"verb": "edit", "args": [{"prompt": {"text": "a smiling woman with red curly hair", "seed": 2, "psi": 0.7}},
                                  "an old man with a grey beard and glasses"],
         "options": {"source": "<image>", "strengths": [0.5], "size": SIZE}},
        {"verb": "sweep", "args": [{"wplus": b64(wplus[0])}, TARGET], "options": {"n_frames": 3, "size": SIZE}},
        {"verb": "morph", "args": [{"wplus": b64(wplus[1])}, {"wplus": b64(wplus[2])}], "options": {"n_frames": 3, "size": SIZE}},
        {"verb": "morph", "args": [{"wplus": b64(wplus[1])}, {"wplus": b64(wplus[2])}],  # crossover: the default
         "options": {"n_frames": 3, "size": SIZE, "mode": "style_mix"}},
    ]


def python_start(value: object) -> object:
    from celeblook.pipeline import PhotoStart, PromptStart

    if not isinstance(value, dict):
        return value
    if "wplus" in value:
        return f32(value["wplus"]).reshape(23, 512)
    if "prompt" in value:
        return PromptStart(**value["prompt"])
    photo = value["photo"]
    return PhotoStart(Image.fromarray(synthetic_photo(**photo["synthetic"])), aligned=photo["aligned"])


def face_record(face) -> dict:
    scores = {k: v for k, v in face.scores.items() if k != "identity_distance"}
    return {"wplus": b64(face.wplus), "scores": scores, "pixels": pixel_stats(np.asarray(face.image))}


def answer(pipeline, request: dict) -> dict:
    got = getattr(pipeline, request["verb"])(*map(python_start, request["args"]), **request["options"])
    if hasattr(got, "variants"):
        return {"variants": [{"name": v.name, "face": face_record(v.face) if v.face else None, "notices": v.notices}
                             for v in got.variants], "notices": got.notices}
    return {"faces": [face_record(f) for f in got.faces], "notices": got.notices}


def golden(models: Path) -> list[dict]:
    """Every request with the Python pipeline's result, on the export in ``models``."""
    from celeblook.engine import Models
    from celeblook.pipeline import Pipeline
    from celeblook.presets import get_preset
    from celeblook.runtime.ort import OrtEngine

    engine = OrtEngine(models, threads=1, text_int8=False)  # the fp32 text encoder: what made the page's bank
    pipeline = Pipeline(Models(get_preset(engine.constants["preset"]), engine))
    return [{"request": r, "result": answer(pipeline, r)} for r in requests(engine.w_avg[0])]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tests/web_golden.py SITE/models OUT.json")
    Path(sys.argv[2]).write_text(json.dumps(golden(Path(sys.argv[1])), indent=1))
