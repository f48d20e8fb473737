"""``weights convert``: a published MobileStyleGAN checkpoint (the Drive .ckpt or the Hub's .pth) -> our generator file
(safetensors + sidecar, w_avg from seeded samples), its sha256 recorded in the weights manifest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ..errors import WeightsError
from ..files import weights_dir
from .hashes import file_hashes, remember
from .weights import check, find_role, load_manifest, record_hash


def convert(
    source: str | Path | None = None, out: str | Path | None = None, preset: str = "ffhq",
    root: Path | None = None, log: Callable[[str], None] = print,
) -> Path:
    """Published .ckpt or HF .pth -> our safetensors + sidecar (w_avg from 10k seeded samples).

    Without ``out`` the result is the preset's generator file, and its sha256 goes into the manifest.
    """
    import torch

    from ..models.checkpoint import W_AVG_SAMPLES, W_AVG_SEED, read_checkpoint, write_generator
    from ..models.mobilestylegan import Generator
    from ..presets import get_preset

    root = root or weights_dir()
    target = find_role(preset, "generator", root)
    if source is None:
        sources = [s for s in load_manifest(root) if s.preset == preset and s.role == "generator-source"]
        present = [check(s, root, progress=True) for s in sources if (root / s.name).is_file()]
        if not present:
            raise WeightsError(f"no MobileStyleGAN checkpoint in {root} to convert; get one with: {sources[-1].command}")
        corrupt = [s for s in present if s.state == "corrupt"]
        if len(corrupt) == len(present):
            raise WeightsError(f"{corrupt[0].path.name} is corrupt ({corrupt[0].detail}); get it again with: {corrupt[0].file.command}")
        source = next(s.path for s in present if s.state == "present")
    source = Path(source)
    ckpt = read_checkpoint(source, None if out is not None else get_preset(preset).generator)
    # the mean is computed below with a recorded sample count and seed; load with a placeholder first
    generator = Generator(ckpt.config).load_reference(ckpt.state_dict, w_avg=torch.zeros(1, ckpt.config.style_dim))
    log(f"computing w_avg from {W_AVG_SAMPLES:,} seeded samples (seed {W_AVG_SEED})")
    w_avg = generator.compute_w_avg(W_AVG_SAMPLES, seed=W_AVG_SEED)
    source_sha = file_hashes(source, root, progress=True)["sha256"]
    dest = Path(out) if out is not None else root / target.name
    sidecar = write_generator(dest, ckpt, w_avg, source_sha)
    if out is None:
        record_hash(target.name, sidecar["sha256"], sidecar["size"], root)
        remember(root, dest, {"sha256": sidecar["sha256"], "md5": hashlib.md5(dest.read_bytes()).hexdigest()})
    log(f"wrote {dest} ({sidecar['size']:,} bytes, sha256 {sidecar['sha256']}) from {source.name} ({ckpt.kind})")
    return dest
