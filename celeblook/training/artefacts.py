"""The checks of a rehearsal's artefacts (``check_artefacts(OUT)``, run by ``train all --rehearse`` and callable on
any OUT): the heads' tensors against the shapes of the real configuration and their sidecars' sha256, eval.json, the
ONNX exports (every graph a runtime serves, its shapes, parity, bytes and sha256), the model card and index that
``weights publish`` would upload, and the Space folder. Each check is a row (``Check``); one that raises fails with
its error's first line, so the table always comes out whole.

Where a rehearsal puts each artefact (OUT's layout) is named here; celeblook.training.rehearse makes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..export.graphs import SYNTHESIS_SIZES, TOKEN_AXIS
from ..export.onnx import MANIFEST
from ..export.preset import INT8_ALWAYS, TEACHER
from ..files import sha256_file
from ..presets import Preset, RefinerTrainConfig, StrengthTrainConfig, get_preset
from .all import RECORD, STAGES, figure_lines, head_files

PUBLISH = "publish"  # OUT/publish: what `weights publish` would upload besides OUT's files
SPACE = "space"
TEACHER_EXPORT = "onnx-teacher"  # `export onnx --models image_encoder_teacher`: the ViT-L/14 image tower's graph
PIXELS = ["batch", 3, 224, 224]
PLACEHOLDER_REPO = "OWNER/NAME"
MODELS_URL = f"https://huggingface.co/{PLACEHOLDER_REPO}/resolve/main/onnx/"  # the notebook's: the published onnx/


@dataclass(frozen=True)
class Check:
    artefact: str
    what: str
    problem: str | None = None  # None: passed

    def line(self) -> str:
        return f"{self.artefact}: {self.what}: {self.problem or 'ok'}"


class Checks:
    """Collects checks; a check that raises fails with the error's first line instead of ending the run."""

    def __init__(self) -> None:
        self.rows: list[Check] = []

    def check(self, artefact: str, what: str, test: Callable[[], str | None]) -> bool:
        """``test()`` returns None when it passes, else the problem."""
        try:
            problem = test()
        except Exception as err:  # a missing file, bad JSON, a wrong type: each is the artefact's problem
            problem = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        self.rows.append(Check(artefact, what, problem))
        return problem is None


def check_table(checks: list[Check]) -> list[str]:
    rows = [("artefact", "check", "result"), *((c.artefact, c.what, c.problem or "ok") for c in checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [f"{a:<{widths[0]}}  {w:<{widths[1]}}  {r}" for a, w, r in rows]


def _json(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def _differs(what: str, got, want) -> str | None:
    return None if got == want else f"{what} {got!r}, expected {want!r}"


def check_artefacts(out: Path, space: Path | None = None) -> list[Check]:
    """Every artefact of a finished rehearsal in ``out`` (its Space in ``space``, default OUT/space), checked as a
    real run must leave it; the preset is the one OUT's train_all.json names."""
    out = Path(out)
    space = Path(space) if space is not None else out / SPACE
    checks = Checks()
    record: dict = {}

    def read_record() -> str | None:
        record.update(_json(out / RECORD))
        get_preset(record["preset"])
        missing = [s for s in STAGES if not record.get("stages", {}).get(s, {}).get("done")]
        return f"stages not done: {', '.join(missing)}" if missing else None

    if not checks.check(RECORD, "every stage done", read_record):
        return checks.rows
    preset = get_preset(record["preset"])
    _check_heads(checks, preset, out)
    _check_eval(checks, out)
    _check_run_export(checks, preset, out / "onnx")
    _check_export(checks, preset, out / TEACHER_EXPORT, {TEACHER: ([PIXELS], [["batch", preset.embed_dim]])})
    _check_publication(checks, preset, out)
    _check_space(checks, out / "onnx", space)
    return checks.rows


def expected_head_shapes(preset: Preset) -> dict[str, dict[str, tuple[int, ...]]]:
    """Each head file's tensors and their shapes, as the preset's real configuration builds them (on the meta device:
    nothing allocated)."""
    from ..models.mapper import Mapper, MapperConfig
    from ..models.strength import StrengthConfig, StrengthPredictor
    from ..models.student import StudentConfig, StudentEncoder

    g = preset.generator
    with torch.device("meta"):
        modules = {
            "mapper": Mapper(MapperConfig(embed_dim=preset.embed_dim, style_dim=g.style_dim, n_slots=g.n_slots,
                                          used_slots=g.n_slots - 1)),
            "strength": StrengthPredictor(StrengthConfig(style_dim=g.style_dim, embed_dim=preset.embed_dim,
                                                         c_max=StrengthTrainConfig.from_preset(preset).c_max),
                                          w_avg=torch.zeros(1, g.style_dim)),
            "student": StudentEncoder(StudentConfig.from_preset(preset)),
        }
    return {name: {k: tuple(v.shape) for k, v in module.state_dict().items()} for name, module in modules.items()}


def _check_heads(checks: Checks, preset: Preset, out: Path) -> None:
    from safetensors import safe_open

    expected = expected_head_shapes(preset)
    for name, path in zip(("mapper", "strength", "student"), head_files(preset, out)):

        def sha256(path=path) -> str | None:
            return _differs("sha256", sha256_file(path), _json(path.with_suffix(".json"))["sha256"])

        def shapes(path=path, want=expected[name]) -> str | None:
            with safe_open(str(path), framework="pt") as f:
                got = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            if set(got) != set(want):
                return f"tensors {sorted(set(got) ^ set(want))[:3]} differ from the real config's"
            wrong = [k for k in want if got[k] != want[k]]
            return f"{wrong[0]} is {got[wrong[0]]}, the real config's {want[wrong[0]]}" if wrong else None

        def provenance(path=path) -> str | None:
            return _differs("provenance preset", _json(path.with_suffix(".json"))["provenance"].get("preset"), preset.name)

        checks.check(path.name, "sha256 = the sidecar's", sha256)
        checks.check(path.name, f"{len(expected[name])} tensors, shapes of the real config", shapes)
        checks.check(path.with_suffix(".json").name, "sidecar names the preset", provenance)


def _check_eval(checks: Checks, out: Path) -> None:
    def sections() -> str | None:
        summary = _json(out / "eval.json")
        missing = [k for k in ("mapper", "strength", "encoder", "evaluation") if not isinstance(summary.get(k), dict)]
        if missing:
            return f"lacks {', '.join(missing)}"
        figure_lines(summary)  # what `train all` prints of it: every figure it names must be there
        evaluation = summary["evaluation"]
        missing = [k for k in ("inversion", "edit", "strength", "config", "label", "notices") if k not in evaluation]
        return f"evaluation lacks {', '.join(missing)}" if missing else None

    def numbers() -> str | None:
        summary = _json(out / "eval.json")
        bad = [key for key, value in _leaves(summary) if value is None or isinstance(value, (list, dict)) and not value]
        return f"{bad[0]} is empty" if bad else None

    checks.check("eval.json", "every section and figure train all prints", sections)
    checks.check("eval.json", "no empty figure", numbers)


def _leaves(data, prefix: str = ""):
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), data


def expected_graphs(preset: Preset) -> dict[str, tuple[list[list], list[list]]]:
    """Every graph a real run exports (``train all``'s export: what a runtime serves) -> (input shapes, output
    shapes), batch first, from the preset's real configuration."""
    g, e = preset.generator, preset.embed_dim
    wplus = ["batch", g.n_slots, g.style_dim]
    graphs = {"mapping": ([["batch", g.style_dim]], [["batch", g.style_dim]]),
              **{f"synthesis_{s}": ([wplus], [["batch", 3, s, s]]) for s in SYNTHESIS_SIZES},
              "image_encoder": ([PIXELS], [["batch", e]]),
              "text_encoder": ([["batch", TOKEN_AXIS]], [["batch", e]]),
              "mapper": ([["batch", e]], [wplus]),
              "strength": ([wplus, ["batch", e], wplus], [["batch"]])}
    r = RefinerTrainConfig.from_preset(preset).size  # the refiner's photo and reconstruction, and the exit G renders
    graphs |= {"refiner": ([["batch", 3, r, r]] * 2, [wplus]), f"synthesis_{r}": ([wplus], [["batch", 3, r, r]])}
    return {**graphs, **{f"{name}_int8": graphs[name] for name in INT8_ALWAYS}}


def _check_export(checks: Checks, preset: Preset, onnx: Path, want: dict[str, tuple[list[list], list[list]]]) -> dict:
    """The export in ``onnx``: exactly the graphs of ``want``, each with its shapes, recorded parity, bytes and
    sha256; returns its constants."""
    manifest: dict = {}
    label = f"{onnx.name}/{MANIFEST}"

    def read() -> str | None:
        manifest.update(_json(onnx / MANIFEST))
        return _differs("skipped", manifest.get("skipped"), {})

    if not checks.check(label, "read, nothing skipped", read):
        return {}
    entries = {Path(e["file"]).stem: e for e in manifest.get("files", [])}
    checks.check(label, f"exactly the {len(want)} graph(s) expected", lambda: _differs("graphs", sorted(entries), sorted(want)))
    for stem, entry in sorted(entries.items()):
        if stem not in want:
            continue

        def graph(entry=entry, want=want[stem], path=onnx / entry["file"]) -> str | None:
            parity = entry["parity"]
            return (_differs("inputs", [spec["shape"] for spec in entry["inputs"]], want[0])
                    or _differs("outputs", [spec["shape"] for spec in entry["outputs"]], want[1])
                    or (None if parity.get("ok") else f"ORT vs torch {parity}")
                    or _differs("bytes", path.stat().st_size, entry["bytes"])
                    or _differs("sha256", sha256_file(path), entry["sha256"]))

        checks.check(entry["file"], f"shapes of the real config, {entry.get('precision')} parity ok, "
                                    f"{entry['bytes'] / 2**20:.1f} MB, sha256", graph)
    return manifest.get("constants", {})


def _check_run_export(checks: Checks, preset: Preset, onnx: Path) -> None:
    constants = _check_export(checks, preset, onnx, expected_graphs(preset))
    checks.check(f"onnx/{MANIFEST}", "constants of the preset", lambda: (
        _differs("preset", constants.get("preset"), preset.name)
        or _differs("trained", constants.get("trained"), preset.trained)
        or _differs("w_avg length", len(constants.get("w_avg", [])), preset.generator.style_dim)
        or _differs("n_slots", constants.get("n_slots"), preset.generator.n_slots)
        or _differs("sizes", constants.get("sizes"), list(SYNTHESIS_SIZES))
        or _differs("c_max", constants.get("c_max"), StrengthTrainConfig.from_preset(preset).c_max)
        or _differs("photo_encoder", constants.get("photo_encoder"), "image_encoder")))
    checks.check("onnx/*.onnx", "heads exported whole (bytes >= their safetensors')", lambda: _smaller_than_head(preset, onnx))


def _smaller_than_head(preset: Preset, onnx: Path) -> str | None:
    """An exported head holds all its weights: its fp32 graph is at least as large as its safetensors (bar the
    header)."""
    for graph, head in zip(("mapper", "strength", "image_encoder"), head_files(preset, onnx.parent)):
        tensors = head.stat().st_size - 8 - int.from_bytes(head.read_bytes()[:8], "little")
        if (onnx / f"{graph}.onnx").stat().st_size < tensors:
            return f"{graph}.onnx is smaller than the {tensors} bytes of {head.name}'s tensors"
    return None


def _check_publication(checks: Checks, preset: Preset, out: Path) -> None:
    from ..hub.heads import CARD, INDEX, collect

    folder = out / PUBLISH

    def index() -> str | None:
        listed = _json(folder / INDEX)
        files = dict(collect(preset, out))
        return (_differs("preset", listed.get("preset"), preset.name)
                or _differs("files", sorted(listed.get("files", {})), sorted(files))
                or next((f"{name}: sha256 differs from the file" for name, path in files.items()
                         if listed["files"][name]["sha256"] != sha256_file(path)), None))

    def card() -> str | None:
        text = (folder / CARD).read_text()
        stages = _json(out / RECORD)["stages"]
        steps = {name: _json(path.with_suffix(".json")) for name, path in zip(("mapper", "strength", "encoder"),
                                                                              head_files(preset, out))}
        wanted = [
            "---\nlicense: other", f"# CelebrityLook heads for preset `{preset.name}`",
            *(["a rehearsal of the real run"] if preset.rehearsal else []),
            f"| mapper | {steps['mapper']['provenance']['encoder']} embeddings",
            f"| {steps['mapper']['provenance']['train_config']['steps']} | ",
            f"| {steps['strength']['training']['steps']} | ",
            f"| {steps['encoder']['provenance']['train_config']['steps']} | ",
            "| mapper wplus_mse_final |", "| evaluation inversion similarity |", "| evaluation strength abs_err_learned |",
            "## Licences", *(f"| {name} | {entry['size']:,} | `{entry['sha256']}` |"
                             for name, entry in _json(folder / INDEX)["files"].items()),
        ]
        missing = [w for w in wanted if w not in text]
        if missing:
            return f"lacks {missing[0]!r}"
        return None if all(stages.get(s, {}).get("seconds") for s in ("mapper", "strength", "encoder")) else "stage times missing"

    checks.check(f"{PUBLISH}/{INDEX}", "every file published, its sha256", index)
    checks.check(f"{PUBLISH}/{CARD}", "model card: training, evaluation, licences, files", card)


def _check_space(checks: Checks, onnx: Path, space: Path) -> None:
    models, files = space / "models", space.with_name(space.name + "-models")

    def page() -> str | None:
        missing = [name for name in ("index.html", "src", "vendor", "README.md", ".celeblook-build") if not (space / name).exists()]
        if missing:
            return f"lacks {', '.join(missing)}"
        readme = (space / "README.md").read_text()
        return None if "sdk: static" in readme and MODELS_URL in readme else "README.md is no static Space of MODELS_URL's"

    def site() -> str | None:
        config = _json(space / "site.json")
        prompts = config.get("prompts") or {}
        data = (models / prompts.get("file", "?")).read_bytes()
        return (_differs("format", config.get("format"), "celeblook-site/1")
                or _differs("models_url", config.get("models_url"), MODELS_URL)
                or _differs("prompt bank sha256", hashlib.sha256(data).hexdigest(), prompts.get("sha256"))
                or _differs("prompt bank bytes", len(data), 2 * len(prompts.get("prompts", [])) * prompts.get("dim", 0))
                or next((f"{f['file']} differs" for f in config.get("align", {}).get("files", [])
                         if sha256_file(space / "vendor" / "face-api" / "model" / f["file"]) != f["sha256"]), None))

    def manifests() -> str | None:
        exported = _json(onnx / MANIFEST)
        for manifest in (models / MANIFEST, files / MANIFEST):
            if _json(manifest) != exported:
                return f"{manifest.parent.name}/{MANIFEST} is not the export's"
        return None if not list(models.glob("*.onnx")) else "the Space holds ONNX files it should fetch"

    def model_files() -> str | None:
        for entry in _json(onnx / MANIFEST)["files"]:
            path = files / entry["file"]
            if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
                return f"{entry['file']} differs from its manifest entry"
        return None

    checks.check(f"{space.name}/", "page, vendor, Space README", page)
    checks.check(f"{space.name}/site.json", "format, models URL, prompt bank, alignment model", site)
    checks.check(f"{space.name}/models/", "the export's manifest, no model files", manifests)
    checks.check(f"{files.name}/", "the export's files, bytes and sha256", model_files)
