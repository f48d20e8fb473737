"""weights publish / weights download --heads: trained heads through the Hub, against the local stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_standin import hub_fixture  # noqa: F401  (the `hub` fixture)
from tiny_heads import STUDENT, TINY, save_tiny_heads

from celeblook.cli import main
from celeblook.errors import InputError, WeightsError
from celeblook.heads_repo import INDEX, download_heads, place
from celeblook.models.mapper import load_mapper
from celeblook.models.strength import load_strength
from celeblook.models.student import load_student
from celeblook.presets import get_preset

REPO = "someone/celeblook-tiny-heads"
HEADS = ["mapper.safetensors", "mapper.json", "strength.safetensors", "strength.json",
         f"{STUDENT}.safetensors", f"{STUDENT}.json"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A `train all` folder with seeded tiny heads; the ONNX files are stand-in bytes (publish uploads them as
    they are; real exports are made in test_train_all)."""
    folder = save_tiny_heads(tmp_path_factory.mktemp("run"))
    (folder / "onnx").mkdir()
    for name in ("mapper", "strength", "image_encoder"):
        (folder / "onnx" / f"{name}.onnx").write_bytes(name.encode() * 1000)
    (folder / "onnx" / "manifest.json").write_text(json.dumps({"format": "celeblook-onnx/1"}))
    (folder / "eval.json").write_text(json.dumps({"mapper": {"wplus_mse_final": 0.12, "ratio_to_mean_latent": 0.51},
                                                  "strength": {"abs_err_learned_bracketed": 0.011, "bracketed_share": 0.9},
                                                  "evaluation": {"heads": str(folder), "inversion": {"similarity": 0.93},
                                                                 "edit": {"text_score_gain": 0.021}}}))
    return folder


@pytest.fixture
def weights(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "weights"
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(root))
    return root


def test_publish_then_download_gives_bit_identical_heads_in_place(hub, trained, weights, monkeypatch):
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    files = hub.files(REPO)
    assert set(files) == {*HEADS, "onnx/mapper.onnx", "onnx/strength.onnx", "onnx/image_encoder.onnx",
                          "onnx/manifest.json", INDEX, "README.md"}
    assert len(hub.messages) == 1  # one commit
    card = files["README.md"].decode()
    for needed in ("license: other", "MobileStyleGAN", "LICENSE-NVIDIA", "OpenCLIP", "MIT", "seeded random",
                   "| mapper wplus_mse_final | 0.12 |", "| mapper ratio_to_mean_latent | 0.51 |",
                   "| strength bracketed_share | 0.9 |", "| mapper | teacher embeddings of generated faces | 300 | 32 |",
                   "| evaluation inversion similarity | 0.93 |", "| evaluation edit text_score_gain | 0.021 |"):
        assert needed in card, needed

    monkeypatch.setenv("CELEBLOOK_HEADS_REPO", REPO)
    assert main(["weights", "download", "--heads", "--preset", "tiny"]) == 0
    for name in HEADS + ["onnx/mapper.onnx", "onnx/manifest.json"]:
        assert (weights / "tiny" / name).read_bytes() == (trained / name).read_bytes(), name
    assert not (weights / f"{STUDENT}.safetensors").exists()  # that name is ffhq's trained student
    # and loads, its sidecar's sha256 included
    load_mapper(weights / "tiny" / "mapper.safetensors")
    load_strength(weights / "tiny" / "strength.safetensors", "retrain")
    load_student(weights / "tiny" / f"{STUDENT}.safetensors")
    gets = len([r for r in hub.requests if r[0] == "GET"])
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 0  # all in place: only the index
    assert len([r for r in hub.requests if r[0] == "GET"]) == gets  # the index comes from the cache (same commit)


def test_a_head_that_does_not_match_the_index_is_refused(hub, trained, weights):
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    hub.corrupt.add(f"/{REPO}/resolve/{hub.branches[REPO]['main']}/mapper.safetensors")
    with pytest.raises(WeightsError, match=r"download of mapper.safetensors from .* refused: sha256 .* does not match its index"):
        download_heads(REPO, TINY, log=lambda _: None, progress=False)
    assert not (weights / "tiny" / "mapper.safetensors").exists()
    hub.corrupt.clear()
    download_heads(REPO, TINY, log=lambda _: None, progress=False)
    assert (weights / "tiny" / "mapper.safetensors").read_bytes() == (trained / "mapper.safetensors").read_bytes()


def test_heads_of_another_preset_are_refused(hub, trained, weights, capsys):
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    assert main(["weights", "download", "--heads", REPO, "--preset", "ffhq"]) == 2
    assert "holds heads for preset 'tiny', not 'ffhq'" in capsys.readouterr().err
    assert not weights.exists() or not any(weights.rglob("*.safetensors"))


def test_the_index_cannot_place_files_outside_the_weights_dir(hub, trained, weights):
    index = {"format": 1, "preset": "tiny", "files": {name: {"sha256": "0" * 64, "size": 1} for name in HEADS}}
    index["files"]["../../evil.onnx"] = {"sha256": "0" * 64, "size": 1}
    hub.commit(REPO, {INDEX: json.dumps(index).encode()})
    with pytest.raises(InputError, match="unexpected file '../../evil.onnx'"):
        download_heads(REPO, TINY, log=lambda _: None, progress=False)
    for bad in ("onnx/../x.onnx", "mapper.bin", "student_other.safetensors", "/etc/passwd"):
        with pytest.raises(InputError):
            place(TINY, bad)
    assert place(get_preset("ffhq"), f"{STUDENT}.safetensors") == f"{STUDENT}.safetensors"  # the pipeline's place
    assert place(get_preset("ffhq"), "mapper.json") == "ffhq/mapper.json"


def test_publish_names_what_is_missing_and_the_command(tmp_path, capsys):
    (tmp_path / "mapper.safetensors").write_bytes(b"x")
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "lacks mapper.json, strength.safetensors" in err and "onnx/manifest.json" in err
    assert err.strip().endswith(f"`python -m celeblook train all --preset tiny --out {tmp_path}`")


def test_heads_need_a_repository_name(weights, monkeypatch, capsys):
    monkeypatch.delenv("CELEBLOOK_HEADS_REPO", raising=False)
    assert main(["weights", "download", "--heads"]) == 2
    assert "--heads OWNER/NAME or CELEBLOOK_HEADS_REPO=OWNER/NAME" in capsys.readouterr().err
    assert main(["weights", "publish", "--repo", "not a repo"]) == 2
    assert "a Hub repository is OWNER/NAME" in capsys.readouterr().err


def test_first_run_fetches_the_heads_named_by_the_environment(hub, trained, weights, monkeypatch):
    from celeblook.first_run import ensure_defaults

    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    monkeypatch.setenv("CELEBLOOK_HEADS_REPO", REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ensure_defaults("tiny") == [
        f"weights for preset 'tiny' missing: the trained heads of {REPO} (offline mode is on (HF_HUB_OFFLINE)); get them "
        "with `python -m celeblook weights setup --preset tiny`, or try the app on untrained models: "
        "`CELEBLOOK_PRESET=tiny bash dev.sh app`"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    notices = ensure_defaults("tiny")
    assert notices[-1].startswith(f"heads for preset tiny from {REPO} at ") and notices[-1].endswith("verified and in place")
    assert (weights / "tiny" / "mapper.safetensors").read_bytes() == (trained / "mapper.safetensors").read_bytes()
    requests = len(hub.requests)
    assert ensure_defaults("tiny") == [] and len(hub.requests) == requests  # in place: nothing asked


def test_heads_in_place_are_checked_through_the_hash_cache_and_the_manifest_is_written_once(hub, weights, monkeypatch):
    import hashlib

    import celeblook.weights as weights_module
    from celeblook.heads_repo import weight_names

    ffhq = get_preset("ffhq")
    files = {name: name.encode() * 100 for name in weight_names(ffhq)}
    index = {"format": 1, "preset": "ffhq",
             "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()}}
    hub.commit(REPO, {**files, INDEX: json.dumps(index).encode()})
    writes: list[str] = []
    write_json = weights_module._write_json
    monkeypatch.setattr(weights_module, "_write_json", lambda path, obj: (writes.append(path.name), write_json(path, obj)))
    placed = download_heads(REPO, ffhq, log=lambda _: None, progress=False)
    assert writes.count("manifest.json") == 1  # every verified hash recorded in one write
    for name in ("ffhq/mapper.safetensors", "ffhq/strength.safetensors", f"student_{ffhq.student}.safetensors"):
        entry = index["files"][name.removeprefix("ffhq/")]
        listed = weights_module.find(name, weights)
        assert (listed.sha256, listed.size) == (entry["sha256"], entry["size"])
        assert weights_module.check(listed, weights).detail == "sha256 verified"
    cache = json.loads((weights / ".hashes.json").read_text())
    assert {path.relative_to(weights).as_posix() for path in placed} <= set(cache)

    class NoHashing:
        def __getattr__(self, name):
            raise AssertionError("a head already in place was read again")

    monkeypatch.setattr(weights_module, "hashlib", NoHashing())  # in place: checked through the cache alone
    assert download_heads(REPO, ffhq, log=lambda _: None, progress=False) == placed
