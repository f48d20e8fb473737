"""A strength head whose answer is easy to see in the numbers (for the eval tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from celeblook.models.heads_io import save_weights
from celeblook.models.strength import STRENGTH_KIND, StrengthConfig, StrengthPredictor


def save_still_strength_head(path: Path) -> None:
    """strength.safetensors (+ sidecar) at ``path`` of a head answering C ~ 0: its edits leave the face as it is."""
    head = StrengthPredictor(StrengthConfig())
    torch.nn.init.constant_(head.bias, -20.0)
    save_weights(path, head.state_dict(), {"kind": STRENGTH_KIND, "config": head.config.to_dict()})
