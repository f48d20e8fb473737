"""The text tower runs on the token columns up to the batch's last end-of-text token only, exactly.

CLIP's text transformer is causal and pools at the EOT, so the columns after it cannot change the embedding:
torch (ClipTextTower), the ONNX graph (dynamic token length) and the ORT backend all cut them.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _export_tiny import tiny_export, tiny_models

from celeblook.export.graphs import text_encoder_graph
from celeblook.export.onnx import random_feeds
from celeblook.export.parity import FP32_ABS, INT8_COSINE
from celeblook.models.clip import trims_exactly
from celeblook.runtime.ort import OrtEngine, open_session
from celeblook.text.tokenizer import eot_length

PROMPTS = ["a face", "a smiling woman with red hair", "an old man with a grey beard, round glasses and a hat"]
LONG = "a portrait of " + "a very " * 60 + "happy person"  # cut to 77 tokens


@pytest.fixture(scope="module")
def clip():
    return tiny_models()["clip"]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    return tiny_export(tmp_path_factory.getbasetemp())


def untrimmed(clip, tokens):
    """open_clip's own forward on all 77 columns."""
    return F.normalize(clip.text.tower(tokens), dim=-1)


def lengths_run(module):
    """Record the token length the transformer of ``module`` runs on."""
    seen = []
    module.register_forward_pre_hook(lambda _m, args, kwargs: seen.append(args[0].shape[1]), with_kwargs=True)
    return seen


def test_presets_towers_are_trimmed(clip):
    import open_clip

    assert trims_exactly(clip.text.tower) and clip.text.causal is not None
    with torch.device("meta"):  # the ffhq preset's ViT-L-14 tower, built as build_clip does but without weights
        real = open_clip.create_model("ViT-L-14", pretrained=None, force_custom_text=True, device="meta").text
    assert trims_exactly(real) and real.pool_type == "argmax" and real.attn_mask.shape == (77, 77)


def test_non_causal_tower_is_not_trimmed():
    from open_clip.transformer import TextTransformer

    from celeblook.models.clip import ClipTextTower

    bidirectional = ClipTextTower(TextTransformer(width=16, heads=2, layers=1, output_dim=8, no_causal_mask=True))
    assert bidirectional.causal is None  # every column reaches the EOT: cutting would change the embedding
    assert text_encoder_graph(bidirectional).dynamic == {}  # exported at the fixed 77 columns


def test_torch_trimmed_equals_untrimmed(clip):
    tokens, truncated = clip.tokenize([*PROMPTS, LONG])
    assert truncated == [False, False, False, True] and tokens[-1, -1] == tokens.max()  # the cut prompt ends at 76
    with torch.no_grad():
        short = tokens[:3]
        assert eot_length(short) < 20 and (short[:, eot_length(short):] == 0).all()  # padding present
        torch.testing.assert_close(clip.text(short), untrimmed(clip, short), atol=1e-5, rtol=0)
        torch.testing.assert_close(clip.text(tokens), untrimmed(clip, tokens), atol=1e-5, rtol=0)
        for i in range(3):  # one prompt alone runs even fewer columns, same embedding as in the batch
            torch.testing.assert_close(clip.text(tokens[i : i + 1]), untrimmed(clip, tokens[i : i + 1]), atol=1e-5, rtol=0)


def test_torch_tower_runs_only_up_to_the_last_eot(clip):
    seen = lengths_run(clip.text.tower.transformer)
    tokens, _ = clip.tokenize(PROMPTS)
    with torch.no_grad():
        clip.text(tokens)
        clip.text(clip.tokenize([LONG])[0])
    assert seen == [eot_length(tokens), 77] and seen[0] == int(tokens[2].argmax()) + 1 < 20


def test_manifest_declares_a_dynamic_token_axis(export_dir):
    files = {e["file"]: e for e in json.loads((export_dir / "manifest.json").read_text())["files"]}
    for name in ("text_encoder.onnx", "text_encoder_int8.onnx"):
        assert files[name]["inputs"][0]["shape"] == ["batch", "length"] and files[name]["meta"]["context_length"] == 77
        feeds = random_feeds(files[name], batch=3)["tokens"]  # full-width rows: start, words, end, padding
        assert feeds.shape == (3, 77) and (feeds[:, 0] == 49406).all() and (feeds.max(1) == 49407).all()


@pytest.mark.parametrize("cut", ["short", 1, 30, 77])
def test_onnx_any_length_equals_torch_at_77(clip, export_dir, cut):
    tokens, _ = clip.tokenize([*PROMPTS, LONG] if cut == 77 else PROMPTS)
    length = eot_length(tokens) if cut == "short" else cut
    with torch.no_grad():
        expected = untrimmed(clip, tokens).numpy() if length >= eot_length(tokens) else clip.text.causal(tokens[:, :length]).numpy()
    got = open_session(export_dir / "text_encoder.onnx").run(None, {"tokens": tokens[:, :length].numpy()})[0]
    assert np.abs(got - expected).max() <= FP32_ABS


def test_int8_trimmed_is_close_to_torch(clip, export_dir):
    tokens, _ = clip.tokenize([*PROMPTS, LONG])
    with torch.no_grad():
        expected = untrimmed(clip, tokens).numpy()
    session = open_session(export_dir / "text_encoder_int8.onnx", "int8")
    for rows in (slice(0, 3), slice(0, 1), slice(0, 4)):
        got = session.run(None, {"tokens": tokens[rows, : eot_length(tokens[rows])].numpy()})[0]
        cosine = (got * expected[rows]).sum(1) / np.linalg.norm(got, axis=1)
        assert cosine.min() >= INT8_COSINE


@pytest.mark.parametrize("int8", [False, True])
def test_ort_backend_runs_the_cut_tokens(clip, export_dir, int8):
    backend = OrtEngine(export_dir, threads=1, text_int8=int8)
    runs = []
    real_run = backend._run
    backend._run = lambda model, **feeds: runs.append(feeds["tokens"].shape) or real_run(model, **feeds)
    tokens, _ = clip.tokenize(PROMPTS)
    got = torch.from_numpy(backend.embed_tokens(tokens.numpy()))
    assert runs == [(3, eot_length(tokens))] and eot_length(tokens) < 20
    with torch.no_grad():
        expected = untrimmed(clip, tokens)
    if int8:
        assert F.cosine_similarity(got, expected).min() >= INT8_COSINE
    else:
        torch.testing.assert_close(got, expected, atol=FP32_ABS, rtol=0)


def test_ort_backend_does_not_cut_for_a_fixed_width_graph(clip, export_dir):
    backend = OrtEngine(export_dir, threads=1)
    backend.file("text_encoder")["inputs"][0]["shape"] = ["batch", 77]  # how a tower that cannot be cut is exported
    runs = []
    real_run = backend._run
    backend._run = lambda model, **feeds: runs.append(feeds["tokens"].shape) or real_run(model, **feeds)
    backend.embed_tokens(clip.tokenize(PROMPTS)[0].numpy())
    assert runs == [(3, 77)]
