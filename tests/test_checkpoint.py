"""Generator checkpoints: the three formats, the restricted unpickler, and one-line errors for bad files."""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import os
import pickle
import sys
import types
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from celeblook.errors import WeightsError
from celeblook.factory import create_generator
from celeblook.models.checkpoint import W_AVG_SAMPLES, load_generator, read_checkpoint, write_generator
from celeblook.models.reference_layout import fill_reference, reference_shapes
from celeblook.presets import get_preset

TINY = get_preset("tiny").generator


@pytest.fixture(scope="module")
def tiny_sd() -> dict[str, torch.Tensor]:
    return fill_reference(TINY, base_seed=3)


@contextlib.contextmanager
def fake_modules(names: dict[str, dict[str, object]]):
    """Make modules (and their parents) importable only while pickling, so the file names them."""
    added = []
    for name, attrs in names.items():
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            mod_name = ".".join(parts[:i])
            if mod_name not in sys.modules:
                sys.modules[mod_name] = types.ModuleType(mod_name)
                added.append(mod_name)
        for attr, obj in attrs.items():
            obj.__module__, obj.__qualname__ = name, attr
            setattr(sys.modules[name], attr, obj)
    try:
        yield
    finally:
        for mod_name in reversed(added):
            del sys.modules[mod_name]


def teacher_extras() -> dict[str, torch.Tensor]:
    """A few of the keys the published Distiller holds besides the generator."""
    return {
        "synthesis_net.conv1.conv.weight": torch.randn(1, 8, 8, 3, 3),
        "loss.gan_loss.m.convs.0.0.weight": torch.randn(4, 3, 1, 1),
        "loss.perceptual_loss.net.net.0.weight": torch.randn(4, 3, 3, 3),
        "inception.Conv2d_1a_3x3.bn.num_batches_tracked": torch.tensor(7),
        "device_info": torch.tensor(0),
    }


def save_lightning(sd: dict[str, torch.Tensor], path: Path, legacy: bool = False) -> Path:
    """A PL 1.0.2-shaped checkpoint whose ``callbacks`` key is a class from an unimportable module."""

    class ModelCheckpoint:
        pass

    with fake_modules({"pytorch_lightning.callbacks.model_checkpoint": {"ModelCheckpoint": ModelCheckpoint}}):
        adam = {"state": {0: {"step": 10, "exp_avg": torch.randn(3), "exp_avg_sq": torch.rand(3)}},
                "param_groups": [{"lr": 5e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0, "params": [0]}]}
        ckpt = {
            "epoch": 41,
            "global_step": 420_000,
            "pytorch-lightning_version": "1.0.2",
            "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.012), "best_model_path": "/ckpt/epoch=41.ckpt"}},
            "optimizer_states": [adam, adam],
            "lr_schedulers": [],
            "state_dict": OrderedDict({**teacher_extras(), **sd}),
        }
        torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    assert importlib.util.find_spec("pytorch_lightning") is None
    return path


def save_hf(sd: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save({"state_dict": OrderedDict({**teacher_extras(), **sd})}, path)
    return path


def assert_same_weights(ckpt, sd):
    assert list(ckpt.state_dict) == list(reference_shapes(ckpt.config))
    for key, value in ckpt.state_dict.items():
        assert torch.equal(value, sd[key]), key


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_lightning_checkpoint_loads_without_lightning(tmp_path, tiny_sd, legacy):
    path = save_lightning(tiny_sd, tmp_path / "model.ckpt", legacy)
    ckpt = read_checkpoint(path)
    assert ckpt.kind == "lightning"
    assert ckpt.config.channels == TINY.channels and ckpt.config.style_dim == 512 and ckpt.config.n_mlp == 8
    assert ckpt.w_avg is None  # the checkpoint's style_mean is kept only for comparison
    assert_same_weights(ckpt, tiny_sd)
    assert not any(name.split(".")[0] == "pytorch_lightning" for name in sys.modules)


def test_hf_pth_loads(tmp_path, tiny_sd):
    ckpt = read_checkpoint(save_hf(tiny_sd, tmp_path / "mobilestylegan_ffhq_v2.pth"))
    assert ckpt.kind == "state_dict"
    assert_same_weights(ckpt, tiny_sd)


def test_three_formats_give_the_same_generator(tmp_path, tiny_sd):
    lightning = save_lightning(tiny_sd, tmp_path / "a.ckpt")
    ckpt = read_checkpoint(lightning)
    g_ckpt = load_generator(lightning)
    sidecar = write_generator(tmp_path / "gen.safetensors", ckpt, g_ckpt.w_avg, source_sha256="ab" * 32)
    g_pth = load_generator(save_hf(tiny_sd, tmp_path / "b.pth"))
    g_safe = load_generator(tmp_path / "gen.safetensors")

    # the mean latent is a real mean of mapping(z) (10k seeded samples), not the checkpoint's style_mean
    assert torch.equal(g_ckpt.w_avg, g_ckpt.compute_w_avg(W_AVG_SAMPLES, seed=0))
    assert not torch.allclose(g_ckpt.w_avg, tiny_sd["style_mean"], atol=1e-2)
    assert torch.equal(g_safe.w_avg, g_ckpt.w_avg) and torch.equal(g_pth.w_avg, g_ckpt.w_avg)
    wplus = g_ckpt.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(0)), 0.7)
    ref = g_ckpt(wplus, size=64)
    assert torch.equal(g_pth(wplus, size=64), ref) and torch.equal(g_safe(wplus, size=64), ref)

    assert sidecar["generator"]["channels"] == list(TINY.channels)
    assert sidecar["source"] == {"file": "a.ckpt", "kind": "lightning", "sha256": "ab" * 32}
    assert sidecar["w_avg"]["n_samples"] == 10_000 and sidecar["w_avg"]["seed"] == 0
    assert not list(tmp_path.glob("*.part"))


def test_create_generator_prefers_checkpoint_and_builds_tiny(tmp_path, tiny_sd, monkeypatch):
    g = create_generator("tiny")
    assert g.config == TINY and not g.training and not any(p.requires_grad for p in g.parameters())
    assert torch.equal(g.w_avg, g.compute_w_avg(10_000, seed=0))
    explicit = create_generator("tiny", checkpoint=save_hf(tiny_sd, tmp_path / "x.pth"))
    w = torch.zeros(1, 23, 512)
    assert not torch.equal(explicit(w, size=16), g(w, size=16))  # seed 3 weights, not the preset's seed 0

    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(WeightsError, match=r"celeblook weights setup --preset ffhq"):
        create_generator("ffhq")


# --- refusing pickles that would run code --------------------------------------------------------------


def _zip_with_pickle(tmp_path: Path, payload: bytes, name: str) -> Path:
    """A torch zip checkpoint whose data.pkl is replaced by ``payload``."""
    torch.save({"a": torch.ones(2)}, tmp_path / "base.pt")
    out = tmp_path / name
    with zipfile.ZipFile(tmp_path / "base.pt") as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, payload if info.filename.endswith("/data.pkl") else src.read(info))
    return out


def _payloads(marker: Path) -> dict[str, bytes]:
    class System:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    class Exec:
        def __reduce__(self):
            return builtins.exec, (f"open({str(marker)!r}, 'w').close()",)

    cmd = f"touch {marker}".encode()
    getattr_trick = (
        b"\x80\x02cbuiltins\ngetattr\ncbuiltins\n__import__\nX\x02\x00\x00\x00os\x85RX\x06\x00\x00\x00system\x86R"
        + b"X" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
    )
    return {
        "os.system": pickle.dumps({"state_dict": {"x": System()}}, protocol=2),
        "exec": pickle.dumps(Exec(), protocol=2),
        "getattr": getattr_trick,
    }


def test_payloads_are_live(tmp_path):
    """Control: the payloads do run under a plain unpickler, so the refusals below mean something."""
    marker = tmp_path / "control"
    pickle.loads(_payloads(marker)["getattr"])
    assert marker.exists()


@pytest.mark.parametrize("kind", ["os.system", "exec", "getattr"])
@pytest.mark.parametrize("container", ["zip", "plain"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, kind, container):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[kind]
    if container == "zip":
        path = _zip_with_pickle(tmp_path, payload, "evil.ckpt")
    else:
        path = tmp_path / "evil.pth"
        path.write_bytes(payload)
    with pytest.raises(WeightsError, match=r"refused: .*would execute code") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_lightning_named_callable_is_refused(tmp_path):
    """A pickle may name Lightning classes, but calling one (here a function posing as one) is refused."""
    marker = tmp_path / "pwned"

    def run(cmd):
        os.system(cmd)

    class Evil:
        def __reduce__(self):
            return run, (f"touch {marker}",)

    with fake_modules({"pytorch_lightning.utilities.evil": {"run": run}}):
        torch.save({"state_dict": {"x": Evil()}}, tmp_path / "evil.ckpt")
    with pytest.raises(WeightsError, match=r"refused: the pickle calls pytorch_lightning\.utilities\.evil\.run, which would execute code"):
        read_checkpoint(tmp_path / "evil.ckpt")
    assert not marker.exists()


# --- bad files: one clear line each ----------------------------------------------------------------------


def _bad_files(tmp_path: Path, sd: dict[str, torch.Tensor]) -> dict[str, tuple[Path, str]]:
    missing = dict(sd)
    del missing["student.layers.2.conv1.conv.weight_dw"]
    extra = {**sd, "student.layers.0.conv1.conv.weight_extra": torch.zeros(1)}
    wrong = {**sd, "student.layers.3.to_img.conv.weight": torch.zeros(12, 5, 1, 1)}
    nan = {**sd, "student.conv1.bias": torch.full_like(sd["student.conv1.bias"], float("nan"))}
    full = save_hf(sd, tmp_path / "full.pth").read_bytes()
    (tmp_path / "truncated.pth").write_bytes(full[: len(full) // 2])
    (tmp_path / "random.bin").write_bytes(os.urandom(4096))
    (tmp_path / "marker.ckpt").write_bytes(b"\x80" + bytes(range(256)) * 16)  # 0x80 then no pickle protocol
    (tmp_path / "protocol5.ckpt").write_bytes(b"\x80\x05" + bytes(range(32, 256)) * 16)  # torch warned about protocol 5 here
    (tmp_path / "notes.txt").write_text("these are not weights\n")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    ckpt = read_checkpoint(tmp_path / "full.pth")
    write_generator(tmp_path / "gen.safetensors", ckpt, torch.zeros(1, 512), None)
    data = (tmp_path / "gen.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) - 1000])
    torch.save({"model": OrderedDict(a=torch.ones(1))}, tmp_path / "other.pth")
    torch.save({"state_dict": OrderedDict(fc=torch.ones(1))}, tmp_path / "classifier.pth")
    return {
        "missing key": (save_hf(missing, tmp_path / "missing.pth"),
                        r"wrong keys .*missing 1 \(e\.g\. 'student\.layers\.2\.conv1\.conv\.weight_dw'\)"),
        "extra key": (save_hf(extra, tmp_path / "extra.pth"), r"wrong keys .*unexpected 1"),
        "wrong shape": (save_lightning(wrong, tmp_path / "wrong.ckpt"),
                        r"wrong shapes: 1 tensor\(s\) .*'student\.layers\.3\.to_img\.conv\.weight' "
                        r"is \(12, 5, 1, 1\), expected \(12, 32, 1, 1\)"),
        "nan": (save_hf(nan, tmp_path / "nan.pth"), r"corrupt weights: 'student\.conv1\.bias'"),
        "truncated zip": (tmp_path / "truncated.pth", r"truncated file"),
        "truncated safetensors": (tmp_path / "cut.safetensors", r"truncated or corrupt safetensors"),
        "random bytes": (tmp_path / "random.bin", r"not a checkpoint"),
        "pickle marker, then junk": (tmp_path / "marker.ckpt", r"not a checkpoint: neither a PyTorch file nor safetensors"),
        "random pickle": (tmp_path / "protocol5.ckpt", r"truncated or corrupt pickle \(Unsupported operand 32\)$"),
        "text": (tmp_path / "notes.txt", r"not a checkpoint"),
        "empty": (tmp_path / "empty.ckpt", r"not a checkpoint: the file is empty"),
        "no state_dict": (tmp_path / "other.pth", r"not a MobileStyleGAN file: it holds a dict without a 'state_dict'"),
        "other model": (tmp_path / "classifier.pth", r"not a MobileStyleGAN file: no mapping_net"),
        "absent": (tmp_path / "nope.ckpt", r"no such checkpoint file"),
    }


def test_bad_files_get_one_clear_line(tmp_path, tiny_sd):
    for case, (path, pattern) in _bad_files(tmp_path, tiny_sd).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no stray warning (torch's about pickle protocols) beside the line
            with pytest.raises(WeightsError, match=pattern) as err:
                read_checkpoint(path)
        assert "\n" not in str(err.value), case
        assert str(path) in str(err.value), case
        assert "http" not in str(err.value) and "weights_only" not in str(err.value), case  # ours, not torch's advice


def test_random_pickle_data_is_always_one_clear_line(tmp_path):
    """Junk after a pickle header: the weights-only unpickler raised IndexError or KeyError for ~7% of these."""
    path = tmp_path / "junk.ckpt"
    for seed in range(300):
        rng = np.random.default_rng(seed)
        path.write_bytes(bytes([0x80, 2 + seed % 4]) + rng.bytes(int(rng.integers(1, 2048))))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(WeightsError, match=r"(truncated or corrupt|not a MobileStyleGAN)") as err:
                read_checkpoint(path)
        assert "\n" not in str(err.value) and "http" not in str(err.value), seed


def test_config_mismatch_is_a_shape_error(tmp_path, tiny_sd):
    with pytest.raises(WeightsError, match=r"wrong shapes: .*channels \[512, 512, 512, 512, 512, 256, 128, 64\]"):
        read_checkpoint(save_hf(tiny_sd, tmp_path / "tiny.pth"), config=get_preset("ffhq").generator)
