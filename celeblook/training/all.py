"""``python -m celeblook train all``: mapper -> strength -> encoder -> eval -> export, stage by stage.

    OUT/train_all.json                       per stage: done, seconds, its figures (what a re-run reads)
    OUT/runs/{mapper,strength,encoder}/      each job's checkpoint, metrics.jsonl and metrics.json
    OUT/mapper.safetensors, strength.safetensors, student_<variant>.safetensors (+ .json sidecars)
    OUT/eval.json                            the held-out figures of all three, with the bars they must clear
    OUT/onnx/                                ONNX exports of the three heads (+ manifest.json)

A stage recorded as done is skipped; an interrupted one resumes from its checkpoint (each job resumes
exactly). The strength head learns on the mapper trained just before it. Step counts and sizes default to
the preset's (``Preset.training``), so a bare ``--preset tiny`` finishes in minutes on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..presets import Preset

Log = Callable[[str], None]


def export_heads(preset: Preset, folder: Path, log: Log = print) -> Path:
    """ONNX exports of the mapper, the strength head and the student in ``folder`` into ``folder/onnx``;
    returns the manifest's path."""
    from ..export.onnx import clip_constants, export_models, image_encoder_graph, mapper_graph, strength_graph
    from ..models.mapper import load_mapper
    from ..models.strength import load_strength
    from ..models.student import load_student

    folder = Path(folder)
    mapper, meta = load_mapper(folder / "mapper.safetensors")
    strength = load_strength(folder / "strength.safetensors", "run `python -m celeblook train all` again")
    student = load_student(folder / f"student_{preset.student}.safetensors")
    constants = {"preset": preset.name, "trained": preset.trained, "c_max": strength.config.c_max,
                 "mapper_encoder": meta.get("provenance", {}).get("encoder", "teacher"),
                 "clip": clip_constants(student.mean, student.std)}
    graphs = [image_encoder_graph(student), mapper_graph(mapper), strength_graph(strength)]
    return export_models(graphs, folder / "onnx", constants=constants, source={"preset": preset.name, "heads": str(folder)},
                         progress=log)
