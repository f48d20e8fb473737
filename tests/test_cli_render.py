"""``python -m celeblook render | generate``: conformance through the CLI, outputs, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import procs
import pytest
import torch
from PIL import Image
from test_checkpoint import save_lightning

from celeblook.cli import main
from celeblook.cli.render import WPLUS_RANGE_FACTOR, WPLUS_RANGE_SAMPLES, check_wplus_range
from celeblook.errors import InputError
from celeblook.factory import create_generator
from celeblook.media import save_pngs, to_uint8
from celeblook.models.mobilestylegan import GeneratorConfig
from celeblook.models.reference_layout import fill_reference
from celeblook.seeds import seeded_normal

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return procs.run([sys.executable, "-m", "celeblook", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def read_pngs(out: Path, names: list[str]) -> np.ndarray:
    images = [Image.open(out / n) for n in names]
    assert all(im.mode == "RGB" for im in images)
    return np.stack([np.asarray(im) for im in images])


def test_to_uint8_rule():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 7.0]).reshape(1, 1, 1, 7).expand(1, 3, 1, 7)
    # round((clamp(x) + 1) * 127.5): 127.5 and 63.75... round half to even
    assert to_uint8(x)[0, 0, :, 0].tolist() == [0, 0, 64, 128, 191, 255, 255]
    assert to_uint8(np.zeros((2, 3, 4, 5))).shape == (2, 4, 5, 3)


def test_save_pngs_roundtrip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    paths = save_pngs(images, tmp_path / "out")
    assert [p.name for p in paths] == ["000.png", "001.png"]
    assert np.array_equal(read_pngs(tmp_path / "out", ["000.png", "001.png"]), images)


# --- "Done when": the published layout renders through the CLI like the reference ------------------------


@pytest.fixture(scope="module")
def reference_ckpt(tmp_path_factory, conformance_dir) -> Path:
    sd = fill_reference(GeneratorConfig(), base_seed=1234)
    return save_lightning(sd, tmp_path_factory.mktemp("ckpt") / "mobilestylegan_ffhq.ckpt")


@pytest.mark.parametrize("latent", ["wplus", "z"])
def test_cli_render_matches_reference(tmp_path, conformance_dir, reference_ckpt, latent):
    ref = np.load(conformance_dir / "mobilestylegan_seed1234.npz")
    meta = json.loads((conformance_dir / "mobilestylegan_seed1234.json").read_text())
    assert meta["base_seed"] == 1234 and not bool(ref["truncation_applied"])
    np.save(tmp_path / "in.npy", ref[latent].astype(np.float32))
    out = tmp_path / "out"
    result = cli("render", "--checkpoint", str(reference_ckpt), f"--{latent}", str(tmp_path / "in.npy"), "--out", str(out))
    assert result.returncode == 0, result.stderr

    latents = np.load(out / "latents.npy")
    assert latents.dtype == np.float32 and latents.shape == (2, 23, 512)
    np.testing.assert_allclose(latents, ref["wplus"], atol=1e-5, rtol=0)
    expected = np.rint((np.clip(ref["img"].astype(np.float32), -1, 1) + 1) * 127.5).astype(np.int16).transpose(0, 2, 3, 1)
    got = read_pngs(out, ["000.png", "001.png"]).astype(np.int16)
    assert got.shape == (2, 1024, 1024, 3)
    assert np.abs(got - expected).max() <= 2  # 2/255 for every pixel


# --- the CLI end to end on the tiny preset ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return create_generator("tiny")


def test_generate_then_render_round_trip(tmp_path, tiny, capsys):
    gen_out, render_out = tmp_path / "gen", tmp_path / "render"
    assert main(["generate", "--preset", "tiny", "--seeds", "1-2,5", "--size", "256", "--out", str(gen_out)]) == 0
    names = ["seed0001.png", "seed0002.png", "seed0005.png"]
    latents = np.load(gen_out / "latents.npy")
    z = torch.from_numpy(np.stack([seeded_normal(s, 512) for s in (1, 2, 5)]))  # the app's and the page's seeds
    np.testing.assert_array_equal(latents, tiny.z_to_wplus(z, 0.7).numpy())
    images = read_pngs(gen_out, names)
    assert images.shape == (3, 256, 256, 3)
    with torch.no_grad():
        expected = to_uint8(tiny(torch.from_numpy(latents[1:2]), size=256))
    assert np.array_equal(images[1:2], expected)
    assert len({im.tobytes() for im in images}) == 3  # different seeds, different faces

    assert main(["render", "--preset", "tiny", "--wplus", str(gen_out / "latents.npy"), "--size", "256", "--out", str(render_out)]) == 0
    assert np.array_equal(read_pngs(render_out, ["000.png", "001.png", "002.png"]), images)
    assert np.array_equal(np.load(render_out / "latents.npy"), latents)


def test_render_z_truncation_and_noise(tmp_path, tiny):
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(3)).numpy()
    np.save(tmp_path / "z.npy", z[0])  # a single sample without the batch axis is accepted
    args = ["render", "--preset", "tiny", "--z", str(tmp_path / "z.npy"), "--size", "256", "--truncation", "0.5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    wplus = tiny.z_to_wplus(torch.from_numpy(z[:1]), 0.5)
    np.testing.assert_allclose(np.load(tmp_path / "a" / "latents.npy"), wplus.numpy(), atol=1e-6)
    assert main([*args, "--noise", "7", "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--noise", "7", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (read_pngs(tmp_path / d, ["000.png"]) for d in "abc")
    with torch.no_grad():
        expected = to_uint8(tiny(wplus, size=256, noise=tiny.make_noise(7)))
    assert np.array_equal(b, expected) and np.array_equal(b, c) and not np.array_equal(a, b)


def _bad_inputs(tmp: Path) -> dict[str, list[str]]:
    np.save(tmp / "wplus_2d.npy", np.zeros((2, 512), np.float32))
    np.save(tmp / "int.npy", np.zeros((1, 23, 512), np.int64))
    nan = np.zeros((1, 23, 512), np.float32)
    nan[0, 3, 7] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "inf_z.npy", np.full((1, 512), np.inf, np.float32))
    np.save(tmp / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp / "empty.npy", np.zeros((0, 23, 512), np.float32))
    np.save(tmp / "ok.npy", np.zeros((1, 23, 512), np.float32))
    np.save(tmp / "far.npy", np.full((1, 23, 512), 1e38, np.float32))
    lying_header(tmp / "terabytes.npy", (1_000_000, 23, 512, 100))  # 4.28 TiB claimed, a few bytes held
    lying_header(tmp / "many.npy", (5000, 23, 512))  # the right shape, but 5000 latents claimed and 1 held
    (tmp / "junk.txt").write_text("not a checkpoint")
    (tmp / "marker.ckpt").write_bytes(b"\x80" + bytes(range(256)) * 8)
    (tmp / "file").write_text("")
    ok = ["--preset", "tiny", "--out", str(tmp / "out")]
    return {
        "header lies (TiB)": ["render", "--wplus", str(tmp / "terabytes.npy"), *ok],
        "header lies (count)": ["render", "--wplus", str(tmp / "many.npy"), *ok],
        "W+ of 1e38": ["render", "--wplus", str(tmp / "far.npy"), *ok],
        "0x80 junk checkpoint": ["render", "--wplus", str(tmp / "ok.npy"), "--checkpoint", str(tmp / "marker.ckpt"), *ok],
        "out cannot be made": ["render", "--wplus", str(tmp / "ok.npy"), "--preset", "tiny", "--out", "/proc/celeblook/x"],
        "out under a file": ["render", "--wplus", str(tmp / "ok.npy"), "--preset", "tiny", "--out", str(tmp / "file" / "x")],
        "noise seed too big": ["render", "--wplus", str(tmp / "ok.npy"), "--noise", str(2**64), *ok],
        "missing file": ["render", "--wplus", str(tmp / "absent.npy"), *ok],
        "wrong shape": ["render", "--wplus", str(tmp / "wplus_2d.npy"), *ok],
        "wrong dtype": ["render", "--wplus", str(tmp / "int.npy"), *ok],
        "nan": ["render", "--wplus", str(tmp / "nan.npy"), *ok],
        "inf z": ["render", "--z", str(tmp / "inf_z.npy"), *ok],
        "object array": ["render", "--wplus", str(tmp / "objects.npy"), *ok],
        "empty batch": ["render", "--wplus", str(tmp / "empty.npy"), *ok],
        "not a npy": ["render", "--wplus", str(tmp / "junk.txt"), *ok],
        "non-checkpoint": ["render", "--wplus", str(tmp / "ok.npy"), "--checkpoint", str(tmp / "junk.txt"), *ok],
        "unknown size": ["render", "--wplus", str(tmp / "ok.npy"), "--size", "300", *ok],
        "bad truncation": ["render", "--wplus", str(tmp / "ok.npy"), "--truncation", "5", *ok],
        "bad noise": ["render", "--wplus", str(tmp / "ok.npy"), "--noise", "loud", *ok],
        "both latents": ["render", "--wplus", str(tmp / "ok.npy"), "--z", str(tmp / "ok.npy"), *ok],
        "out is a file": ["render", "--wplus", str(tmp / "ok.npy"), "--preset", "tiny", "--out", str(tmp / "file")],
        "unknown preset": ["render", "--wplus", str(tmp / "ok.npy"), "--preset", "huge", "--out", str(tmp / "out")],
        "reversed seeds": ["generate", "--seeds", "4-1", *ok],
        "junk seeds": ["generate", "--seeds", "a-b", *ok],
        "negative seed": ["generate", "--seeds", "-3", *ok],
    }


def lying_header(path: Path, shape: tuple[int, ...]) -> Path:
    """A .npy whose header declares ``shape`` (float32) but which holds one (23, 512) latent."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(np.zeros((23, 512), np.float32).tobytes())
    return path


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    for case, argv in _bad_inputs(tmp_path).items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a stray warning (RuntimeWarning, torch's UserWarning) fails the case
                code = main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code
        err = capsys.readouterr().err.strip()
        assert code == 2, case
        assert len(err.splitlines()) == 1 and "Traceback" not in err, (case, err)
        assert SAYS.get(case, "") in err, (case, err)
    assert not (tmp_path / "out").exists()


SAYS = {
    "header lies (TiB)": "its header declares shape (1000000, 23, 512, 100) of float32 (4,710,400,000,000 bytes) but the file holds 47,104",
    "header lies (count)": "declares shape (5000, 23, 512)",
    "W+ of 1e38": "W+ values reach 1e+38",
    "0x80 junk checkpoint": "not a checkpoint",
    "out cannot be made": "cannot create the output directory /proc/celeblook/x",
    "out under a file": "cannot create the output directory",
    "noise seed too big": "noise seed must be in [0, 2**63)",
}


def test_the_wplus_bound_lies_far_outside_the_mapping_and_inside_float32(tiny):
    """W+ from the mapping network (even extrapolated to psi 2) passes; the largest value allowed still renders
    finite pixels; beyond it, and for NaN, one clear line. Non-finite pixels are never turned into a picture."""
    with torch.no_grad():
        z = torch.randn(10_000, 512, generator=torch.Generator().manual_seed(123))
        mapped = tiny.z_to_wplus(z, 2.0)
    check_wplus_range(tiny, mapped, "mapped")
    typical = float(tiny.mapping(torch.randn(WPLUS_RANGE_SAMPLES, 512, generator=torch.Generator().manual_seed(0))).abs().max())
    bound = WPLUS_RANGE_FACTOR * typical
    assert float(mapped.abs().max()) < bound / 3  # legitimate latents are nowhere near it
    edge = torch.full((1, 23, 512), bound * 0.999)
    check_wplus_range(tiny, edge, "edge")
    with torch.no_grad():
        assert torch.isfinite(tiny(edge, size=256)).all() and torch.isfinite(tiny(-edge, size=256)).all()
    for bad in (edge * 1.01, torch.full((1, 23, 512), float("nan"))):
        with pytest.raises(InputError, match="refused"):
            check_wplus_range(tiny, bad, "bad")
    with pytest.raises(InputError, match="NaN or infinite"):
        to_uint8(torch.full((1, 3, 4, 4), float("inf")))


def test_bad_input_in_a_real_process(tmp_path):
    """The same guarantee at the interpreter level: exit status 2, one line, no traceback."""
    (tmp_path / "junk.txt").write_text("hello")
    np.save(tmp_path / "ok.npy", np.zeros((1, 23, 512), np.float32))
    result = cli("render", "--checkpoint", str(tmp_path / "junk.txt"), "--wplus", str(tmp_path / "ok.npy"), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'junk.txt'}: not a checkpoint: neither a PyTorch file nor safetensors"
