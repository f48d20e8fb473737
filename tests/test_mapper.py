"""Mapper f and its training loop on the tiny preset: learning, exact resume, the dead slot, file round trip."""

import json
import math
import os
from pathlib import Path

import procs
import pytest
import torch
from safetensors.torch import load_file

from celeblook.errors import WeightsError
from celeblook.models.mapper import Mapper, MapperConfig, load_mapper, save_mapper, zca_whitening
from celeblook.training.mapper import MapperTrainConfig, sample_wplus, train_mapper

SMALL = MapperConfig(width=256, depth=2)
STEPS = 100  # x 32 faces at the 64 px exit: about 40 s on one shared CPU core


def tiny_config(**overrides) -> MapperTrainConfig:
    base = dict(batch=32, lr=3e-3, warmup=5, image_size=64, centre_samples=128, heldout=256,
                eval_every=10**9, ckpt_every=10**9, consistency_every=0, mix_prob=0.0, device="cpu", mapper=SMALL)
    return MapperTrainConfig.from_preset("tiny", **{**base, **overrides})


def test_forward_shape_dead_slot_and_linear_output():
    torch.manual_seed(0)
    mapper = Mapper(SMALL).set_centres(torch.randn(768), 0.5, torch.randn(512))
    wplus = mapper(torch.randn(4, 768))
    assert wplus.shape == (4, 23, 512)
    assert mapper.heads.weight.shape[0] == 22  # no parameters for the unused slot 22
    assert torch.equal(wplus[:, 22], mapper.w_center.expand(4, -1))  # filled with the centre
    residual = wplus[:, :22] - mapper.w_center
    assert (residual < 0).float().mean() > 0.3  # linear head: negative residuals are reachable
    assert residual.std() > 0.5  # the random heads give varied faces; the linear readout starts at zero
    assert not mapper.linear.weight.any() and not mapper.linear.bias.any()


def test_zca_whitening_equalises_sampled_directions_and_damps_the_rest():
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(16, 16, generator=gen))[0]
    spread = torch.logspace(0, -3, 8)  # 8 directions over 3 decades of scale; the other 8 never vary
    residuals = 5.0 + torch.randn(4096, 8, generator=gen) * spread @ basis[:, :8].T
    for shrinkage, low, high in [(1e-8, 0.98, 1.02), (0.1, 0.0, 1.0)]:
        white = zca_whitening(residuals, shrinkage)
        assert torch.allclose(white, white.T, atol=1e-6)
        seen = residuals - residuals.mean(dim=0)
        variance = (seen @ white @ basis[:, :8]).var(dim=0)  # per sampled direction, after whitening
        assert variance.min() > low and variance.max() < high
    # shrinkage 0.1: the large directions come out near unit variance, the tiny ones are damped, not blown up
    assert variance[0] > 0.9 and variance[-1] < 0.01


def test_save_load_round_trip_and_corruption(tmp_path):
    torch.manual_seed(1)
    mapper = Mapper(SMALL).set_centres(torch.randn(768), 0.3, torch.randn(512))
    path = tmp_path / "mapper.safetensors"
    save_mapper(path, mapper, {"preset": "tiny", "encoder": "teacher"})
    loaded, meta = load_mapper(path)
    e = torch.randn(3, 768)
    assert torch.equal(loaded(e), mapper.eval()(e))
    assert meta["provenance"]["encoder"] == "teacher" and len(meta["sha256"]) == 64
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(WeightsError, match="sha256"):
        load_mapper(path)


def test_style_mixing_switches_code_at_one_slot():
    from celeblook.factory import create_generator

    g = create_generator("tiny")
    wplus = sample_wplus(g, 64, 0.5, 1.0, torch.Generator().manual_seed(0))
    changes = (wplus[:, 1:] != wplus[:, :-1]).any(dim=-1).sum(dim=1)
    assert torch.all(changes == 1)  # exactly one crossover per mixed sample


def test_training_cuts_heldout_wplus_mse(tmp_path):
    """Under a CPU minute: held-out wplus_mse falls at least 5x from the untrained mapper's (its random heads
    add about 0.52 to the mean-latent error) and clearly below always answering w_avg."""
    metrics = train_mapper(tiny_config(steps=STEPS), tmp_path, log=lambda _: None)
    assert metrics["wplus_mse_final"] <= metrics["wplus_mse_initial"] / 5
    assert metrics["wplus_mse_final"] < 0.75 * metrics["wplus_mse_mean_latent"]
    assert json.loads((tmp_path / "metrics.json").read_text())["wplus_mse_final"] == metrics["wplus_mse_final"]
    sidecar = json.loads((tmp_path / "mapper.json").read_text())
    assert sidecar["provenance"]["encoder"] == "teacher" and "e_center" in sidecar["provenance"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len([line for line in lines if '"loss"' in line]) == STEPS


def test_resume_reproduces_uninterrupted_run_bit_for_bit(tmp_path):
    cfg = tiny_config(steps=6, batch=4, image_size=32, centre_samples=8, heldout=8, ckpt_every=3,
                      consistency_every=2, mix_prob=0.5)
    train_mapper(cfg, tmp_path / "straight", log=lambda _: None)
    train_mapper(cfg, tmp_path / "resumed", stop_after=3, log=lambda _: None)  # "killed" after step 3
    assert not (tmp_path / "resumed" / "mapper.safetensors").exists()
    train_mapper(cfg, tmp_path / "resumed", resume=True, log=lambda _: None)
    a = load_file(tmp_path / "straight" / "mapper.safetensors")
    b = load_file(tmp_path / "resumed" / "mapper.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchrun_data_parallel_on_cpu(tmp_path):
    """Two gloo processes train one mapper: rank 0 writes the files, the run resumes across ranks.

    Each run takes 20 s on an idle 2-core CPU, 40-60 s at load average 10 (most of it the three processes' start
    and exit); the timeout is for a hang, and procs.run then kills the workers too."""
    import shutil
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed beside this python")
    tests = Path(__file__).parent
    args = [torchrun, "--standalone", "--nproc_per_node=2", str(tests / "torchrun_probe.py"), "train", "mapper",
            "--preset", "tiny", "--out", str(tmp_path), "--batch", "4", "--centre-samples", "32", "--heldout", "8",
            "--image-size", "64", "--device", "cpu", "--ckpt-every", "2", "--eval-every", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tests.parent)}
    first = procs.run(args + ["--steps", "2"], capture_output=True, text=True, env=env, timeout=420)
    assert first.returncode == 0, first.stderr[-2000:]
    again = procs.run(args + ["--steps", "3", "--resume"], capture_output=True, text=True, env=env, timeout=420)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (again.stdout + again.stderr).count("resumed from") == 2  # both ranks continued from the checkpoint
    for run in (first, again):  # the teardown (torchrun_probe.py): each rank freed its DDP wrapper first, and rank 1
        lines = run.stdout.splitlines()  # destroyed the group only once rank 0 had written its files
        destroyed = {rank: lines.index(f"rank {rank}: DDP wrappers alive as the process group is destroyed: 0")
                     for rank in (0, 1)}
        assert destroyed[1] > next(i for i, line in enumerate(lines) if "wrote" in line), lines
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 3 and math.isfinite(metrics["wplus_mse_final"])
    assert (tmp_path / "mapper.safetensors").exists()
