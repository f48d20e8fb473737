"""How close an exported graph must be to the torch model it came from (export measures it, ``export check`` repeats it).

Tolerances (each file's measured value and tolerance are also written into manifest.json at export):

* fp32: max |ORT - torch| <= 1e-4. Measured (ORT 1.32 CPU, batch 2-3): tiny preset 1.5e-6..5.6e-6 for mapping
  and synthesis, <= 3e-6 for encoders, mapper and strength head; real-size ffhq generator with random weights
  (fill_reference seed 7): mapping 5.5e-6, synthesis 1024/512/256 3.4e-7/3.4e-7/3.7e-7 (outputs up to 0.26);
  real-size student (efficientformer_l1: 6.7e-8) passes the same bound (tests/test_export.py). ViT-L/14 towers: checked
  by every `train all --rehearse` (CI) and with CELEBLOOK_SLOW=1; docs/toolchain.md §8 measured 3.6e-6 (image) and
  5.5e-6 (text). Refiner R (tiny, seeded readouts, tests/_export_tiny.py): 2.5e-7.
* fp16 (keep_io_types): max |diff| / max |torch output| <= 1e-2. Measured on the real-size generator:
  mapping 8.1e-4, synthesis 1.1e-3..1.5e-3 (cosine > 0.99999); tiny refiner 6.5e-4.
* int8 (dynamic, QUInt8 weights; text encoder): per-row cosine to torch fp32 >= 0.99. Measured: tiny text
  tower 0.999; docs/toolchain.md §8 measured cosine 0.9999 for a ViT-B/32 image tower and max diff 5.6e-3 on text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FP32_ABS = 1e-4
FP16_REL = 1e-2
INT8_COSINE = 0.99


def compare(expected: Sequence[np.ndarray], got: Sequence[np.ndarray], precision: str) -> dict:
    """Max abs / relative difference and row cosine over all outputs, judged by the precision's tolerance."""
    abs_diff = max(float(np.abs(e - g).max()) for e, g in zip(expected, got))
    scale = max(float(np.abs(e).max()) for e in expected) or 1.0
    flat = [(e.reshape(e.shape[0], -1).astype(np.float64), g.reshape(g.shape[0], -1).astype(np.float64))
            for e, g in zip(expected, got) if e.ndim > 1]
    cosine = min(
        (float(np.min((e * g).sum(1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(g, axis=1) + 1e-30))) for e, g in flat),
        default=1.0,
    )
    result = {"max_abs_diff": abs_diff, "max_rel_diff": abs_diff / scale, "min_cosine": cosine}
    if precision == "fp32":
        result.update(metric="max_abs_diff", tolerance=FP32_ABS, ok=abs_diff <= FP32_ABS)
    elif precision == "fp16":
        result.update(metric="max_rel_diff", tolerance=FP16_REL, ok=abs_diff / scale <= FP16_REL)
    elif precision == "int8":
        result.update(metric="min_cosine", tolerance=INT8_COSINE, ok=cosine >= INT8_COSINE)
    else:
        raise ValueError(f"unknown precision {precision!r}")
    return result
