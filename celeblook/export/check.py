"""Parity of exported ONNX graphs with the torch models they came from (``python -m celeblook export check DIR``).

The tolerances, and what was measured against them, are in ``celeblook.export.parity``; each file's measured
value and tolerance are also written into manifest.json at export.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import InputError, WeightsError
from ..files import sha256_file
from ..runtime.ort import open_session
from .graphs import Graph
from .onnx import MANIFEST, random_feeds
from .parity import compare
from .preset import graphs_from_source


def read_export_manifest(directory: Path) -> dict:
    """An export directory's manifest, its structure checked (constants an object, every listed file a plain name inside it)."""
    path = directory / MANIFEST
    if not path.is_file():
        raise InputError(f"{directory} has no {MANIFEST}: not an export directory")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not valid JSON ({err}): re-run the export") from None
    entry_keys = {"file": str, "model": str, "precision": str, "sha256": str, "bytes": int, "inputs": list}
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    source = manifest.get("source") if isinstance(manifest, dict) else None
    if not isinstance(source, dict) or not isinstance(source.get("preset"), str) or not isinstance(entries, list) or not all(
        isinstance(e, dict) and all(isinstance(e.get(k), t) for k, t in entry_keys.items()) for e in entries
    ):
        raise InputError(f"{path} is not a CelebrityLook export manifest: re-run the export")
    if not isinstance(manifest.get("constants", {}), dict):  # runtimes look constants up by name
        raise InputError(f"{path}: its constants are not a JSON object: re-run the export")
    outside = [e["file"] for e in entries if Path(e["file"]).name != e["file"] or e["file"] in ("", ".", "..")]
    if outside:
        raise InputError(f"{path} lists {outside[0]!r}, which is not a file name in the export directory")
    return manifest


def check_dir(
    directory: str | Path,
    graphs: Sequence[Graph] | None = None,
    batch: int = 3,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Check every file of an export directory: sha256 and size, then ORT vs torch on fresh seeded inputs.

    ``graphs`` are the torch references; by default they are rebuilt from the manifest's ``source``.
    Returns one row per file (``ok`` says whether it passed); raises nothing for a failed parity.
    """
    directory = Path(directory)
    manifest = read_export_manifest(directory)
    if graphs is None:
        graphs = graphs_from_source(manifest["source"], [e["model"] for e in manifest["files"]])
    by_name = {g.name: g for g in graphs}
    rows = []
    for entry in manifest["files"]:
        file = directory / entry["file"]
        if not file.is_file():
            raise WeightsError(f"{file} is listed in the manifest but missing: re-run the export")
        if file.stat().st_size != entry["bytes"] or sha256_file(file) != entry["sha256"]:
            raise WeightsError(f"{file} does not match its manifest sha256: re-run the export")
        graph = by_name.get(entry["model"])
        if graph is None:
            raise WeightsError(f"cannot rebuild the torch model {entry['model']!r} to check {file.name}")
        feeds = random_feeds(entry, batch=batch, seed=1)
        got = open_session(file, entry["precision"]).run(None, feeds)
        row = {"file": entry["file"], "precision": entry["precision"], **compare(graph.reference(feeds), got, entry["precision"])}
        rows.append(row)
        if progress:
            status = "ok" if row["ok"] else "FAIL"
            progress(f"{status:4s} {entry['file']}: {row['metric']} {row[row['metric']]:.3g} (tolerance {row['tolerance']:g})")
    return rows
