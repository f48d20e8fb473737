"""The reference checkpoint's generator keys and a deterministic way to fill them.

``reference_shapes`` lists the keys and shapes the published MobileStyleGAN checkpoint holds for the
generator (201 for the FFHQ config). ``fill_reference`` builds a state dict from seeds with the
``msgfill1`` rule of the shared conformance vectors: one ``torch.randn`` per key, in sorted key order,
with a per-key mean/std that keeps every stage O(1). The ``tiny`` preset and the tests use it, so a
tiny generator is "seeded random weights" in exactly the layout of the real file.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from .mobilestylegan import GeneratorConfig

HAAR = 1.0 / math.sqrt(2.0)

# (regex on the full key, mean, std): first match wins
MSGFILL1 = [
    (r"mapping_net\.layers\.\d+\.weight", 0.0, 100.0),
    (r"mapping_net\.layers\.\d+\.bias", 0.0, 10.0),
    (r".*\.modulation\.bias", 1.0, 0.05),
    (r".*\.modulation\.weight", 0.0, 0.02),
    (r".*\.style_inv", 0.0, 1.0),
    (r"student\.input\.input", 0.0, 1.0),
    (r"student\.(to_img1|layers\.\d+\.to_img)\.conv\.weight", 0.0, 0.5),
    (r"student\..*\.conv\.(weight|weight_dw|weight_permute)", 0.0, 1.0),
    (r"style_mean", 0.0, 1.0),
    (r".*", 0.0, 0.05),
]


def _idwt_keys(prefix: str) -> dict[str, tuple[int, ...]]:
    return {
        prefix + "g0_col": (1, 1, 2, 1),
        prefix + "g1_col": (1, 1, 2, 1),
        prefix + "g0_row": (1, 1, 1, 2),
        prefix + "g1_row": (1, 1, 1, 2),
    }


def _conv_keys(prefix: str, cin: int, cout: int, s: int, depthwise: bool) -> dict[str, tuple[int, ...]]:
    keys = {
        prefix + "bias": (1, cout, 1, 1),
        prefix + "conv.modulation.bias": (cin,),
        prefix + "conv.modulation.weight": (cin, s),
        prefix + "conv.style_inv": (1, 1, cin, 1, 1),
        prefix + "noise.weight": (1,),
    }
    if depthwise:
        keys[prefix + "conv.weight_dw"] = (cin, 1, 3, 3)
        keys[prefix + "conv.weight_permute"] = (cout, cin, 1, 1)
    else:
        keys[prefix + "conv.weight"] = (cout, cin, 3, 3)
    return keys


def _head_keys(prefix: str, cin: int, s: int) -> dict[str, tuple[int, ...]]:
    return {
        prefix + "bias": (1, 12, 1, 1),
        prefix + "conv.modulation.bias": (cin,),
        prefix + "conv.modulation.weight": (cin, s),
        prefix + "conv.weight": (12, cin, 1, 1),
    }


def reference_shapes(config: GeneratorConfig = GeneratorConfig()) -> dict[str, tuple[int, ...]]:
    """Generator keys of the reference checkpoint -> shapes, in sorted() order."""
    s, ch = config.style_dim, config.channels
    shapes: dict[str, tuple[int, ...]] = {"style_mean": (1, s), "student.device_info": (1,)}
    for k in range(1, config.n_mlp + 1):
        shapes[f"mapping_net.layers.{k}.weight"] = (s, s)
        shapes[f"mapping_net.layers.{k}.bias"] = (s,)
    shapes["student.input.input"] = (1, ch[0], 4, 4)
    shapes.update(_conv_keys("student.conv1.", ch[0], ch[0], s, depthwise=False))
    shapes.update(_head_keys("student.to_img1.", ch[0], s))
    shapes.update(_idwt_keys("student.idwt."))
    for i in range(config.n_blocks):
        p, cin, cout = f"student.layers.{i}.", ch[i], ch[i + 1]
        shapes[p + "up.modulation.weight"] = (cin, s)
        shapes[p + "up.modulation.bias"] = (cin,)
        shapes.update(_idwt_keys(p + "up.idwt."))
        shapes.update(_conv_keys(p + "conv1.", cin // 4, cout, s, depthwise=True))
        shapes.update(_conv_keys(p + "conv2.", cout, cout, s, depthwise=True))
        shapes.update(_head_keys(p + "to_img.", cout, s))
    return dict(sorted(shapes.items()))


def _haar_filter(key: str) -> Tensor | None:
    """The fixed Haar synthesis filters the checkpoint holds (g0 = [1,1]/sqrt2, g1 = [1,-1]/sqrt2)."""
    m = re.search(r"\.idwt\.(g[01])_(col|row)$", key)
    if m is None:
        return None
    taps = torch.tensor([HAAR, HAAR] if m.group(1) == "g0" else [HAAR, -HAAR])
    return taps.reshape(1, 1, 2, 1) if m.group(2) == "col" else taps.reshape(1, 1, 1, 2)


def fill_reference(config: GeneratorConfig = GeneratorConfig(), base_seed: int = 1234) -> dict[str, Tensor]:
    """Deterministic generator weights by the ``msgfill1`` rule (see the module docstring)."""
    out: dict[str, Tensor] = {}
    with torch.random.fork_rng(devices=[]):  # the rule seeds the global generator; leave the caller's alone
        for i, (key, shape) in enumerate(reference_shapes(config).items()):
            out[key] = _fill_one(key, shape, base_seed + i)
    return out


def _fill_one(key: str, shape: tuple[int, ...], seed: int) -> Tensor:
    fixed = _haar_filter(key)
    if fixed is not None:
        return fixed
    if key == "student.device_info":
        return torch.zeros(shape)
    mean, std = next((m, s) for pattern, m, s in MSGFILL1 if re.fullmatch(pattern, key))
    torch.manual_seed(seed)
    return torch.randn(shape, dtype=torch.float32) * std + mean
