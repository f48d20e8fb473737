"""The graphs CelebrityLook exports: each model wrapped with named inputs, outputs and dynamic axes (see
celeblook.export.onnx for the files they become)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..models.mobilestylegan import Generator
from .synthesis_graph import ExportedSynthesis

if TYPE_CHECKING:
    from ..models.clip import ClipTeacher, ClipTextTower

SYNTHESIS_SIZES = (1024, 512, 256)
TOKEN_AXIS = "length"  # the text encoder's dynamic token axis in the manifest: runtimes may cut after the last EOT


@dataclass
class Graph:
    """One model to export: a module, named example inputs (batch first) and its output names."""

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: list[str]
    meta: dict = field(default_factory=dict)
    torch_forward: Callable[..., Tensor] | None = None  # the model's own forward, when the module is a rewrite
    dynamic: dict[str, dict[int, torch.export.Dim]] = field(default_factory=dict)  # axes besides the batch, by input

    def reference(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The torch outputs for ORT-style numpy feeds."""
        forward = self.torch_forward or self.module
        with torch.inference_mode():
            out = forward(*(torch.from_numpy(feeds[k]) for k in self.inputs))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return [o.float().numpy() for o in out]


def generator_graphs(generator: Generator, sizes: Sequence[int] = SYNTHESIS_SIZES) -> list[Graph]:
    """mapping.onnx and one synthesis_<size>.onnx per exit size."""
    cfg = generator.config
    graphs = [Graph("mapping", generator.mapping, {"z": torch.randn(2, cfg.style_dim)}, ["w"])]
    for size in sizes:
        module = ExportedSynthesis(generator.synthesis, size).eval()
        example = {"wplus": torch.randn(2, cfg.n_slots, cfg.style_dim)}
        meta = {"size": size, "range": [-1, 1], "noise": "zero"}
        graphs.append(Graph(f"synthesis_{size}", module, example, ["image"], meta, partial(generator, size=size)))
    return graphs


def image_encoder_graph(encoder: nn.Module, name: str = "image_encoder") -> Graph:
    """An ImageEncoder (student or teacher tower): CLIP-normalised pixels -> unit embedding."""
    size = getattr(encoder, "image_size", 224)
    meta = {"image_size": size, "mean": list(encoder.mean), "std": list(encoder.std), "unit_norm": True}
    return Graph(name, encoder, {"pixels": torch.randn(2, 3, size, size)}, ["image_embedding"], meta)


def text_encoder_graph(text_tower: ClipTextTower, context_length: int = 77, vocab_size: int = 49408) -> Graph:
    """Token ids (N,L) int64, 1 <= L <= context_length -> unit embedding; tokenisation stays outside the graph.

    Runtimes cut the tokens after the batch's last end-of-text token (L = its index + 1) before running it:
    exact for causal towers (``CausalTextEncoder``) and several times less work for short prompts; full
    77-column rows give the same result. A tower where the cut is not exact is exported at the fixed context
    length, so its manifest shape (a number, not the name TOKEN_AXIS) tells runtimes not to cut.
    """
    causal = text_tower.causal
    tokens = torch.zeros(2, context_length if causal is None else 8, dtype=torch.int64)
    tokens[:, 0], tokens[:, 1:4], tokens[:, 4] = vocab_size - 2, 320, vocab_size - 1  # start, words, end, padding
    meta = {"context_length": context_length, "vocab_size": vocab_size, "unit_norm": True}
    if causal is None:
        return Graph("text_encoder", text_tower, {"tokens": tokens}, ["text_embedding"], meta)
    length = {"tokens": {1: torch.export.Dim(TOKEN_AXIS, min=1, max=context_length)}}
    return Graph("text_encoder", causal, {"tokens": tokens}, ["text_embedding"], meta, torch_forward=text_tower, dynamic=length)


def mapper_graph(mapper: nn.Module) -> Graph:
    """CLIP embedding -> W+; the centres (w_c, e_c, e_whiten) are buffers, so they are baked into the graph."""
    cfg = mapper.config
    example = {"embedding": torch.randn(2, cfg.embed_dim)}
    # e_scale: the spread text to face varies a prompt's embedding by (text.vary_embedding), in runtimes too
    meta = {"centres": "baked into the graph", "e_scale": float(mapper.e_scale)}
    return Graph("mapper", mapper, example, ["wplus"], meta)


def strength_graph(predictor: nn.Module, n_slots: int = 23) -> Graph:
    """(W+, target text embedding, edit direction) -> C in (0, c_max)."""
    cfg = predictor.config
    example = {
        "wplus": torch.randn(2, n_slots, cfg.style_dim),
        "embedding": torch.randn(2, cfg.embed_dim),
        "delta": torch.randn(2, n_slots, cfg.style_dim),
    }
    return Graph("strength", predictor, example, ["strength"], {"c_max": cfg.c_max})


def refiner_graph(refiner: nn.Module) -> Graph:
    """(photo, reconstruction) at the refiner's render size -> the W+ residual of one iteration."""
    cfg = refiner.config
    size = cfg.render_size
    example = {"photo": torch.randn(2, 3, size, size), "reconstruction": torch.randn(2, 3, size, size)}
    return Graph("refiner", refiner, example, ["residual"], {"render_size": size, "input_size": cfg.input_size,
                                                             "iterations": cfg.iterations})


def model_graphs(
    generator: Generator, student: nn.Module, clip: ClipTeacher, mapper: nn.Module, strength: nn.Module,
    refiner: nn.Module | None = None,
) -> list[Graph]:
    """Every graph a runtime reads, from models already built (benchmarks, tests); the CLI uses ``build_graphs``,
    which loads only the models asked for. With a refiner, the generator exit it renders at is exported too."""
    sizes = refiner_sizes(SYNTHESIS_SIZES, refiner)
    return [*generator_graphs(generator, sizes), image_encoder_graph(student),
            text_encoder_graph(clip.text, clip.context_length, clip.tokenizer.vocab_size),
            mapper_graph(mapper), strength_graph(strength), *([refiner_graph(refiner)] if refiner is not None else [])]


def refiner_sizes(sizes: Sequence[int], refiner: nn.Module | None) -> list[int]:
    """``sizes`` plus the refiner's render size: each iteration runs G there, so a runtime needs that exit."""
    size = refiner.config.render_size if refiner is not None else None
    return [*sizes, size] if size is not None and size not in sizes else list(sizes)
