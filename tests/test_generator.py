"""MobileStyleGAN against the reference implementation's conformance vectors, plus its own invariants."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from celeblook.models.mobilestylegan import Generator, GeneratorConfig, haar_idwt
from celeblook.models.reference_layout import fill_reference, reference_shapes
from celeblook.presets import get_preset


@pytest.fixture(scope="module")
def reference(conformance_dir):
    return np.load(conformance_dir / "mobilestylegan_seed1234.npz")


@pytest.fixture(scope="module")
def generator_1234():
    sd = fill_reference(GeneratorConfig(), base_seed=1234)
    return Generator().load_reference(sd, w_avg=sd["style_mean"])


def test_reference_keys_match_published_layout(conformance_dir):
    keys = json.loads((conformance_dir / "mobilestylegan_keys.json").read_text())
    shapes = reference_shapes(GeneratorConfig())
    assert list(shapes) == list(keys)
    assert all(list(shapes[k]) == v for k, v in keys.items())


def test_mapping_matches_reference(reference, generator_1234):
    with torch.no_grad():
        w = generator_1234.mapping(torch.from_numpy(reference["z"]))
    np.testing.assert_allclose(w.numpy(), reference["w"], atol=1e-5, rtol=1e-5)


def test_synthesis_matches_reference_at_every_exit(reference, generator_1234):
    wplus = torch.from_numpy(reference["wplus"])
    with torch.no_grad():
        img = generator_1234(wplus)
        img256 = generator_1234(wplus, size=256)
        img512 = generator_1234(wplus, size=512)
        heads = generator_1234.synthesis.heads(wplus)
    np.testing.assert_allclose(img.numpy(), reference["img"].astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(F.avg_pool2d(img, 8).numpy(), reference["img_pool8_fp32"], atol=1e-4)
    np.testing.assert_allclose(img256.numpy(), reference["img_256"].astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(F.avg_pool2d(img512, 2).numpy(), reference["img_512_pool2_fp32"], atol=1e-4)
    for head, size in zip(heads, [4, 8, 16, 32, 64]):
        np.testing.assert_allclose(head.numpy(), reference[f"freq_{size:03d}"], atol=1e-4)
    x = img.double()
    stats = torch.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)), x.amin((1, 2, 3)), x.amax((1, 2, 3)), x.abs().mean((1, 2, 3))], 1)
    np.testing.assert_allclose(stats.numpy(), reference["img_stats_fp64"], atol=1e-4)


def test_distinct_slots_and_fixed_noise_match_reference(reference, generator_1234):
    noise = [torch.from_numpy(reference["noise_004"]).float()]
    for s in [8, 16, 32, 64, 128, 256, 512]:
        pair = torch.from_numpy(reference[f"noise_{s:03d}"]).float()
        noise += [pair[0:1], pair[1:2]]
    with torch.no_grad():
        img = generator_1234(torch.from_numpy(reference["wplus_distinct"]), noise=noise)
    np.testing.assert_allclose(img.numpy(), reference["img_distinct"].astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(F.avg_pool2d(img, 8).numpy(), reference["img_distinct_pool8_fp32"], atol=1e-4)


@pytest.fixture(scope="module")
def tiny():
    preset = get_preset("tiny")
    return Generator(preset.generator).load_reference(fill_reference(preset.generator, base_seed=7))


def test_early_exits_equal_full_network_intermediates(tiny):
    wplus = torch.randn(2, 23, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        heads = tiny.synthesis.heads(wplus)
        for size, head in zip(tiny.config.sizes, heads[1:]):
            torch.testing.assert_close(tiny(wplus, size=size), haar_idwt(head), atol=0, rtol=0)


def test_w_input_equals_repeated_wplus_and_slot_22_is_unused(tiny):
    w = torch.randn(2, 512, generator=torch.Generator().manual_seed(1))
    wplus = w[:, None].repeat(1, 23, 1)
    with torch.no_grad():
        a, b = tiny(w, size=256), tiny(wplus, size=256)
        wplus[:, 22] += 10.0
        c = tiny(wplus, size=256)
    assert torch.equal(a, b) and torch.equal(b, c)


def test_every_used_slot_changes_some_exit(tiny):
    # block i's head slot (3i+3) only shows in the exit of block i; the 1024 image uses slot 21 alone
    wplus = torch.randn(1, 23, 512, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        base = tiny.synthesis.heads(wplus)
        for slot in range(22):
            moved = wplus.clone()
            moved[:, slot] += 1.0
            change = max((a - b).abs().max().item() for a, b in zip(tiny.synthesis.heads(moved), base))
            assert change > 1e-4, f"slot {slot} had no effect"


def test_truncation(tiny):
    z = torch.randn(3, 512, generator=torch.Generator().manual_seed(3))
    w = tiny.mapping(z)
    torch.testing.assert_close(tiny.truncate(w, 1.0), w)
    torch.testing.assert_close(tiny.truncate(w, 0.0), tiny.w_avg.expand(3, -1))
    half = tiny.z_to_wplus(z, psi=0.5)
    assert half.shape == (3, 23, 512)
    torch.testing.assert_close(half[:, 5], tiny.w_avg + 0.5 * (w - tiny.w_avg))


def test_w_avg_is_a_seeded_mean_over_10k_samples(tiny):
    a = tiny.compute_w_avg(n_samples=10_000, seed=0)
    b = tiny.compute_w_avg(n_samples=10_000, seed=0)
    c = tiny.compute_w_avg(n_samples=10_000, seed=1)
    assert torch.equal(a, b)
    # two independent 10k means agree closely while single samples spread widely: it is a real mean
    spread = tiny.mapping(torch.randn(64, 512)).std(0).mean()
    assert (a - c).abs().mean() < 0.05 * spread
    torch.testing.assert_close(tiny.w_avg, a)


def test_noise_is_zero_by_default_and_fixed_per_seed(tiny):
    wplus = tiny.z_to_wplus(torch.randn(1, 512, generator=torch.Generator().manual_seed(4)))
    with torch.no_grad():
        assert torch.equal(tiny(wplus, size=256), tiny(wplus, size=256))
        n1, n2 = tiny.make_noise(5), tiny.make_noise(5)
        assert all(torch.equal(a, b) for a, b in zip(n1, n2))
        noisy = tiny(wplus, size=256, noise=n1)
        assert torch.equal(noisy, tiny(wplus, size=256, noise=n2))
        assert not torch.equal(noisy, tiny(wplus, size=256))


def test_unknown_size_is_refused(tiny):
    with pytest.raises(ValueError, match="size must be one of"):
        tiny(torch.zeros(1, 23, 512), size=300)
