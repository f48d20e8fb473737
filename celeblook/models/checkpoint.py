"""Read a MobileStyleGAN generator from any of its three file formats, without running code.

    published Lightning ``.ckpt``   PL 1.0.2 pickle of the whole Distiller (teacher, losses, FID net,
                                    optimizer state, ``callbacks`` keyed by the ModelCheckpoint class)
    Hugging Face mirror ``.pth``    ``{'state_dict': OrderedDict}``
    our ``.safetensors``            generator keys + ``w_avg``, with a JSON sidecar (config, provenance)

All three become the same reference-keyed state dict (``mapping_net.*``, ``student.*``, ``style_mean``),
checked key by key and shape by shape against ``reference_shapes(config)``.

Pickles go through torch's ``weights_only`` unpickler, which only rebuilds tensors and containers.
The Lightning file also names PL classes (the ``callbacks`` dict key); pytorch_lightning is not
installed and is never imported: each such name becomes an inert placeholder class that refuses to
be called. Every other import a pickle asks for is refused, so a payload never runs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..errors import WeightsError
from ..files import sha256_file
from ..remedy import command
from .mobilestylegan import Generator, GeneratorConfig
from .reference_layout import reference_shapes

GENERATOR_PREFIXES = ("mapping_net.", "student.")
STYLE_MEAN = "style_mean"
W_AVG = "w_avg"
FORMAT_NAME = "celeblook-generator"
FORMAT_VERSION = 1
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0
# modules whose classes may appear in a Lightning checkpoint as plain names (never called)
LIGHTNING_MODULES = ("pytorch_lightning", "lightning", "lightning_fabric")
_REFUSED = re.compile(
    r"GLOBAL (\S+) was not an allowed global|unsupported GLOBAL (\S+) whose module"
    r"|reduce for unrecognized function|Can only create new object|Can only build"
)


@dataclass
class GeneratorCheckpoint:
    """A validated generator state dict and what it came from."""

    state_dict: dict[str, Tensor]  # reference keys only (mapping_net.*, student.*, style_mean)
    config: GeneratorConfig
    kind: str  # "lightning" | "state_dict" | "safetensors"
    path: Path
    w_avg: Tensor | None = None  # only our safetensors carry a real mean
    sidecar: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------
# safe unpickling


class _CodeRefused(Exception):
    """Raised by a placeholder when a pickle tries to call it."""


class InertGlobal:
    """Stands in for a class named by a pickle that must not be imported; it cannot be instantiated."""

    qualified_name = ""

    def __new__(cls, *args, **kwargs):
        raise _CodeRefused(cls.qualified_name)


def _placeholder(qualified_name: str) -> type:
    return type(qualified_name.rsplit(".", 1)[-1], (InertGlobal,), {"qualified_name": qualified_name})


def _pickle_streams(path: Path) -> list[bytes]:
    """The pickle bytes of a torch file (zip: data.pkl; legacy: the whole file, read pickle by pickle)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return [archive.read(n) for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
    return [path.read_bytes()]


def pickle_globals(path: Path) -> set[str]:
    """Every ``module.name`` a torch file's pickles import, found by disassembly (nothing is executed)."""
    names: set[str] = set()
    for data in _pickle_streams(path):
        stream = io.BytesIO(data)
        for _ in range(5):  # legacy files hold magic, protocol, sys_info, the object, storage keys
            try:
                for op, arg, _pos in pickletools.genops(stream):
                    if op.name == "GLOBAL":
                        names.add(arg.replace(" ", "."))
            except Exception:  # not (more) pickle data: the tensor bytes follow in legacy files
                break
    return names


def read_pickle(path: str | Path) -> object:
    """torch.load with weights_only=True; Lightning class names load as inert placeholders."""
    path = Path(path)
    lightning = sorted(n for n in pickle_globals(path) if n.split(".", 1)[0] in LIGHTNING_MODULES)
    safe = [(_placeholder(n), n) for n in lightning]
    try:
        with torch.serialization.safe_globals(safe), warnings.catch_warnings():
            # torch warns about pickle protocols it did not write before failing on them: the error says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except _CodeRefused as err:
        raise WeightsError(f"{path}: refused: the pickle calls {err}, which would execute code") from None
    except pickle.UnpicklingError as err:
        match = _REFUSED.search(str(err))
        if match:
            what = match.group(1) or match.group(2) or "a function"
            raise WeightsError(f"{path}: refused: the pickle imports or calls {what}, which would execute code") from None
        raise WeightsError(f"{path}: truncated or corrupt pickle ({_unpickler_reason(err)})") from None
    except (EOFError, RuntimeError, ValueError, OSError) as err:
        raise WeightsError(f"{path}: truncated or corrupt PyTorch file ({_last_line(err)})") from None
    except Exception as err:  # the weights-only unpickler fails on junk with whatever its stack ops raise (IndexError, KeyError, ...)
        raise WeightsError(f"{path}: truncated or corrupt pickle ({type(err).__name__}: {_last_line(err)})") from None


def _unpickler_reason(err: pickle.UnpicklingError) -> str:
    """What the weights-only unpickler objected to, without torch's advice to load it unsafely or its URL."""
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", str(err), re.DOTALL)
    return " ".join(found.group(1).split())[:200] if found else _last_line(err)


def _last_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(err).__name__


# ---------------------------------------------------------------------------------------------------
# reading


def sniff(path: Path) -> str:
    """'torch' (zip or legacy pickle), 'safetensors', or a one-line reason it is neither."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise WeightsError(f"{path}: not a checkpoint: the file is empty")
    if head.startswith(b"PK\x03\x04"):
        if not zipfile.is_zipfile(path):
            raise WeightsError(f"{path}: truncated file: the zip archive has no central directory (incomplete download?)")
        return "torch"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL:  # pickle PROTO: torch's legacy format
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"
    raise WeightsError(f"{path}: not a checkpoint: neither a PyTorch file nor safetensors")


def read_checkpoint(path: str | Path, config: GeneratorConfig | None = None) -> GeneratorCheckpoint:
    """Any of the three formats -> validated reference-keyed generator weights (config inferred if None)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint file")
    if sniff(path) == "safetensors":
        return _read_safetensors(path, config)
    obj = read_pickle(path)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        kind = "lightning" if "pytorch-lightning_version" in obj else "state_dict"
        sd = obj["state_dict"]
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        kind, sd = "state_dict", obj
    else:
        raise WeightsError(f"{path}: not a MobileStyleGAN file: it holds a {type(obj).__name__} without a 'state_dict'")
    state, config = generator_state(sd, config, path)
    return GeneratorCheckpoint(state, config, kind, path)


def _read_safetensors(path: Path, config: GeneratorConfig | None) -> GeneratorCheckpoint:
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: truncated or corrupt safetensors file ({_last_line(err)})") from None
    sidecar = read_sidecar(path)
    if config is None and sidecar:
        config = GeneratorConfig(**{**sidecar["generator"], "channels": tuple(sidecar["generator"]["channels"])})
    w_avg = tensors.pop(W_AVG, None)
    state, config = generator_state(tensors, config, path)
    if w_avg is None or tuple(w_avg.shape) != (1, config.style_dim):
        raise WeightsError(f"{path}: wrong keys: no '{W_AVG}' of shape (1, {config.style_dim}); "
                           f"re-run `{command('weights', 'convert')}`")
    return GeneratorCheckpoint(state, config, "safetensors", path, w_avg.float(), sidecar)


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def read_sidecar(path: Path) -> dict:
    """The JSON beside our safetensors ({} when absent); a sidecar of another format is an error."""
    side = sidecar_path(path)
    if not side.exists():
        return {}
    try:
        meta = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WeightsError(f"{side}: corrupt sidecar ({err})") from None
    if meta.get("format") != FORMAT_NAME or meta.get("format_version") != FORMAT_VERSION:
        raise WeightsError(f"{side}: not a {FORMAT_NAME} v{FORMAT_VERSION} sidecar")
    return meta


def infer_config(sd: Mapping[str, Tensor], path: Path | str = "checkpoint") -> GeneratorConfig:
    """Generator sizes read off the tensors (style_dim, n_mlp, channels); lr_mlp is the reference 0.01."""
    try:
        style_dim = sd["mapping_net.layers.1.weight"].shape[1]
        n_mlp = sum(1 for k in sd if re.fullmatch(r"mapping_net\.layers\.\d+\.weight", k))
        channels = [sd["student.input.input"].shape[1]]
        while f"student.layers.{len(channels) - 1}.conv2.bias" in sd:
            channels.append(sd[f"student.layers.{len(channels) - 1}.conv2.bias"].shape[1])
    except (KeyError, IndexError) as err:
        raise WeightsError(f"{path}: wrong keys: cannot tell the generator's size without {err}") from None
    if len(channels) < 2:
        raise WeightsError(f"{path}: wrong keys: no 'student.layers.0.*' synthesis blocks")
    return GeneratorConfig(style_dim=style_dim, n_mlp=n_mlp, channels=tuple(channels))


def generator_state(
    sd: Mapping[str, object], config: GeneratorConfig | None = None, path: Path | str = "checkpoint"
) -> tuple[dict[str, Tensor], GeneratorConfig]:
    """Keep mapping_net.*, student.*, style_mean; check every key and shape against the config."""
    kept = {k: v for k, v in sd.items() if isinstance(k, str) and (k.startswith(GENERATOR_PREFIXES) or k == STYLE_MEAN)}
    if not kept:
        sample = ", ".join(repr(k) for k in list(sd)[:3]) or "none"
        raise WeightsError(f"{path}: not a MobileStyleGAN file: no mapping_net.*/student.* keys (it has {sample}, ...)")
    not_tensors = [k for k, v in kept.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise WeightsError(f"{path}: wrong keys: {not_tensors[0]!r} is a {type(kept[not_tensors[0]]).__name__}, not a tensor")
    config = config or infer_config(kept, path)
    expected = reference_shapes(config)
    missing = [k for k in expected if k not in kept]
    unexpected = [k for k in kept if k not in expected]
    if missing or unexpected:
        parts = [f"missing {len(missing)} (e.g. {missing[0]!r})"] if missing else []
        parts += [f"unexpected {len(unexpected)} (e.g. {unexpected[0]!r})"] if unexpected else []
        raise WeightsError(f"{path}: wrong keys for generator {_describe(config)}: {', '.join(parts)}")
    wrong = [k for k, shape in expected.items() if tuple(kept[k].shape) != shape]
    if wrong:
        k = wrong[0]
        raise WeightsError(
            f"{path}: wrong shapes: {len(wrong)} tensor(s) differ from generator {_describe(config)} "
            f"(e.g. {k!r} is {tuple(kept[k].shape)}, expected {expected[k]})"
        )
    bad = [k for k in expected if not kept[k].is_floating_point() or not torch.isfinite(kept[k]).all()]
    if bad:
        raise WeightsError(f"{path}: corrupt weights: {bad[0]!r} is not finite floating point")
    return {k: kept[k].detach().to(torch.float32).contiguous().clone() for k in expected}, config


def _describe(config: GeneratorConfig) -> str:
    return f"(style_dim {config.style_dim}, {config.n_mlp} mapping layers, channels {list(config.channels)})"


def load_generator(path: str | Path, config: GeneratorConfig | None = None) -> Generator:
    """A frozen Generator from any of the three formats; pickled files get w_avg from 10k seeded samples."""
    ckpt = read_checkpoint(path, config)
    generator = Generator(ckpt.config)
    if ckpt.w_avg is not None:
        return generator.load_reference(ckpt.state_dict, w_avg=ckpt.w_avg)
    generator.load_reference(ckpt.state_dict, w_avg=torch.zeros(1, ckpt.config.style_dim))
    generator.w_avg.copy_(generator.compute_w_avg(W_AVG_SAMPLES, seed=W_AVG_SEED))
    return generator


# ---------------------------------------------------------------------------------------------------
# writing our format


def write_generator(
    path: str | Path,
    ckpt: GeneratorCheckpoint,
    w_avg: Tensor,
    source_sha256: str | None,
    w_avg_samples: int = W_AVG_SAMPLES,
    w_avg_seed: int = W_AVG_SEED,
) -> dict:
    """Write generator keys + w_avg as safetensors and its sidecar, each atomically; returns the sidecar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {**ckpt.state_dict, W_AVG: w_avg.detach().float().reshape(1, -1).contiguous()}
    part = path.with_name(path.name + ".part")
    save_file(tensors, part, metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION)})
    sidecar = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "generator": {**asdict(ckpt.config), "channels": list(ckpt.config.channels)},
        "source": {"file": ckpt.path.name, "kind": ckpt.kind, "sha256": source_sha256},
        "w_avg": {"n_samples": w_avg_samples, "seed": w_avg_seed, "how": "mean of mapping(z), z ~ N(0, I) from torch.Generator(seed)"},
        "sha256": sha256_file(part),
        "size": part.stat().st_size,
    }
    side_part = sidecar_path(path).with_name(sidecar_path(path).name + ".part")
    side_part.write_text(json.dumps(sidecar, indent=1) + "\n")
    os.replace(part, path)
    os.replace(side_part, sidecar_path(path))
    return sidecar
