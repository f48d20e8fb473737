"""weights publish / weights download --heads: trained heads through the Hub, against the local stand-in."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hub_standin import hub_fixture  # noqa: F401  (the `hub` fixture)
from tiny_heads import STUDENT, TINY, save_tiny_heads, save_tiny_refiner

from celeblook.cli import main
from celeblook.errors import InputError, WeightsError
from celeblook.hub.heads import INDEX, download_heads, place
from celeblook.models.mapper import load_mapper
from celeblook.models.refiner import load_refiner
from celeblook.models.strength import load_strength
from celeblook.models.student import load_student
from celeblook.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
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


def test_a_refiner_is_published_and_downloaded_with_the_heads_and_leaves_with_them(hub, trained, weights, tmp_path):
    import shutil

    with_refiner = Path(shutil.copytree(trained, tmp_path / "with-refiner"))
    save_tiny_refiner(with_refiner)
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(with_refiner)]) == 0
    assert {"refiner.safetensors", "refiner.json"} <= set(hub.files(REPO))
    assert "| refiner | generated faces and the mapper's inversions of them | 200 | 16 |" in hub.files(REPO)["README.md"].decode()
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 0
    installed = weights / "tiny" / "refiner.safetensors"
    assert installed.read_bytes() == (with_refiner / "refiner.safetensors").read_bytes()
    assert load_refiner(installed, "tiny").config.render_size == 64
    # a later set without one: never a mix of two sets
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 0
    assert not installed.exists() and (weights / "tiny" / "mapper.safetensors").is_file()


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
    assert err.strip().endswith(f"`celeblook train all --preset tiny --out {tmp_path}`")


def test_publish_refuses_heads_of_another_preset_and_a_rehearsals(hub, trained, capsys):
    """tiny's heads (or a rehearsal's, seeded at ffhq's size) published as ffhq's would be what the app fetches as ffhq's."""
    assert main(["weights", "publish", "--repo", REPO, "--preset", "ffhq", "--from", str(trained)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{trained} holds heads of preset 'tiny', not 'ffhq'" in err[0], err
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny-rehearsal", "--from", str(trained)]) == 2
    assert "tiny-rehearsal is a rehearsal: its heads are seeded random weights" in capsys.readouterr().err


def test_heads_need_a_repository_name(weights, monkeypatch, capsys):
    monkeypatch.delenv("CELEBLOOK_HEADS_REPO", raising=False)
    assert main(["weights", "download", "--heads"]) == 2
    assert "--heads OWNER/NAME or CELEBLOOK_HEADS_REPO=OWNER/NAME" in capsys.readouterr().err
    assert main(["weights", "publish", "--repo", "not a repo"]) == 2
    assert "a Hub repository is OWNER/NAME" in capsys.readouterr().err


def test_first_run_fetches_the_heads_named_by_the_environment(hub, trained, weights, monkeypatch):
    from celeblook.hub.first_run import ensure_defaults

    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    monkeypatch.setenv("CELEBLOOK_HEADS_REPO", REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ensure_defaults("tiny") == [
        f"weights for preset 'tiny' missing: the trained heads of {REPO} (offline mode is on (HF_HUB_OFFLINE)); get them "
        "with `celeblook weights setup --preset tiny`, or try the app on untrained models: "
        "`CELEBLOOK_PRESET=tiny bash dev.sh app`"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    notices = ensure_defaults("tiny")
    assert notices[-1].startswith(f"heads for preset tiny from {REPO} at ") and notices[-1].endswith("verified and in place")
    assert (weights / "tiny" / "mapper.safetensors").read_bytes() == (trained / "mapper.safetensors").read_bytes()
    requests = len(hub.requests)
    assert ensure_defaults("tiny") == [] and len(hub.requests) == requests  # in place: nothing asked


def test_heads_in_place_are_checked_through_the_hash_cache_and_the_manifest_is_written_once(hub, weights, monkeypatch):
    from safetensors.numpy import save

    import celeblook.hub.weights as weights_module
    from celeblook.hub.heads import weight_names

    ffhq = get_preset("ffhq")
    # each file what its name says (a download checks that), and each file's bytes its own
    files = {name: save({"w": np.full(25, len(name), np.float32)}) if name.endswith(".safetensors")
             else json.dumps({"file": name}).encode() for name in weight_names(ffhq)}
    index = {"format": 1, "preset": "ffhq",
             "files": {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()}}
    hub.commit(REPO, {**files, INDEX: json.dumps(index).encode()})
    writes: list[str] = []
    write_json = weights_module.write_json
    monkeypatch.setattr(weights_module, "write_json", lambda path, obj: (writes.append(path.name), write_json(path, obj)))
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


# ---------------------------------------------------------------------------------------------------
# a hostile or broken Hub (issue 19 item 4)

PICKLE = pickle.dumps({"weight": [0.0] * 64}, protocol=2)  # what torch.save's legacy format writes: code on load


def commit_heads(hub, files: dict[str, bytes], **index) -> str:
    """A commit of ``files`` with an index that lists their true sha256 and size (``index`` overrides its keys)."""
    entries = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()}
    body = {"format": 1, "preset": "tiny", "trained": False, "files": entries, **index}
    return hub.commit(REPO, {**files, INDEX: json.dumps(body).encode()})


def heads_of(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in HEADS}


def tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def written_outside(tmp_path: Path, before: set[Path]) -> list[str]:
    """What appeared under tmp_path outside the weights dir and huggingface_hub's cache."""
    allowed = (tmp_path / "weights", tmp_path / "hf-cache")
    return sorted(str(p) for p in tree(tmp_path) - before if not any(p == a or a in p.parents for a in allowed))


def last_error(capsys) -> str:
    """The command's last line on stderr (after any progress bar), checked to be no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.replace("\r", "\n").strip().splitlines()[-1]


@pytest.mark.parametrize("etag", ["relative", "absolute"])
def test_a_hostile_etag_writes_nothing_outside_the_weights_dir(hub, trained, weights, tmp_path, etag):
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    # huggingface_hub names its blob (and lock) after the ETag: cache/models--o--r/blobs/../../../x is tmp_path/x
    hub.etag = '"../../../x"' if etag == "relative" else f'"{tmp_path / "elsewhere" / "x"}"'
    before = tree(tmp_path)
    code = main(["weights", "download", "--heads", REPO, "--preset", "tiny"])
    assert written_outside(tmp_path, before) == []
    if code == 0:  # the ETag is no path of ours: the heads are the published ones
        for name in HEADS:
            assert (weights / "tiny" / name).read_bytes() == (trained / name).read_bytes(), name


def test_a_hostile_commit_id_is_refused_in_one_line(hub, trained, weights, tmp_path, capsys):
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    hub.repo_commit = "../../outside"
    before = tree(tmp_path)
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 2
    assert last_error(capsys) == (f"error: {hub.url} answered '../../outside' as the commit of {REPO}/{INDEX}, "
                                  "which is not a commit id; check HF_ENDPOINT")
    assert written_outside(tmp_path, before) == [] and not any(weights.rglob("*.safetensors"))


@pytest.mark.parametrize("fault", ["size is text", "files a list", "no sha256", "entry a string", "sha256 a path",
                                   "negative size", "no preset"])
def test_a_malformed_index_is_one_line(hub, trained, weights, capsys, fault):
    files = heads_of(trained)
    entries = {name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for name, data in files.items()}
    index = {"size is text": lambda: entries["mapper.safetensors"].update(size="big"),
             "files a list": lambda: None, "no sha256": lambda: entries["mapper.json"].pop("sha256"),
             "entry a string": lambda: entries.update({"mapper.json": "0" * 64}),
             "sha256 a path": lambda: entries["mapper.json"].update(sha256="../../x"),
             "negative size": lambda: entries["strength.json"].update(size=-1), "no preset": lambda: None}[fault]
    index()
    body = {"format": 1, "preset": "tiny", "files": list(entries) if fault == "files a list" else entries}
    if fault == "no preset":
        del body["preset"]
    hub.commit(REPO, {**files, INDEX: json.dumps(body).encode()})
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 2
    line = last_error(capsys)
    assert line.startswith(f"error: {REPO}'s {INDEX} is malformed: "), line
    assert not weights.exists() or not any(weights.rglob("*.safetensors"))


def test_a_refused_download_keeps_the_heads_installed_before_it(hub, trained, weights, capsys):
    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    download_heads(REPO, TINY, log=lambda _: None, progress=False)
    installed = {p: p.read_bytes() for p in (weights / "tiny").rglob("*") if p.is_file()}
    paths = tree(weights)
    files = heads_of(trained)
    for name in ("mapper.json", "strength.json"):  # version 2 of two sidecars
        files[name] = json.dumps({**json.loads(files[name]), "note": "version 2"}).encode()
    commit = commit_heads(hub, files)
    hub.corrupt.add(f"/{REPO}/resolve/{commit}/strength.json")  # listed after the mapper's new sidecar
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 2
    line = last_error(capsys)
    assert line.startswith(f"error: download of strength.json from {REPO} refused: sha256 "), line
    assert line.endswith("nothing was kept, run the command again")
    assert {p: p.read_bytes() for p in (weights / "tiny").rglob("*") if p.is_file()} == installed  # the old set, whole
    assert tree(weights) == paths  # and nothing else: no staging folder, no partial file
    hub.corrupt.clear()
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 0
    for name in HEADS:
        assert (weights / "tiny" / name).read_bytes() == files[name], name


@pytest.mark.parametrize("bad", ["pickle head", "sidecar not JSON"])
def test_a_head_that_is_not_the_format_it_claims_is_refused(hub, trained, weights, capsys, bad):
    files = heads_of(trained)
    if bad == "pickle head":
        files["mapper.safetensors"] = PICKLE
    else:
        files["strength.json"] = b"{not json"
    commit_heads(hub, files)
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 2
    name, what = ("mapper.safetensors", "a safetensors file") if bad == "pickle head" else ("strength.json", "a JSON object")
    line = last_error(capsys)
    assert line.startswith(f"error: download of {name} from {REPO} refused: it is not {what} ("), line
    assert line.endswith("nothing was kept, run the command again")
    assert not weights.exists() or not any(weights.rglob("*.safetensors"))


@pytest.mark.parametrize("announced", [False, True], ids=["no Content-Length", "Content-Length"])
def test_a_download_longer_than_its_declared_size_is_cut_off_at_once(hub, trained, weights, capsys, announced):
    commit_heads(hub, heads_of(trained))
    hub.flood_announced = announced
    index = json.loads(hub.files(REPO)[INDEX])
    index["files"]["mapper.safetensors"]["size"] = 2_000  # the index claims 2 KB ...
    commit = hub.commit(REPO, {INDEX: json.dumps(index).encode()})
    flood = f"/{REPO}/resolve/{commit}/mapper.safetensors"
    hub.flood[flood] = 256 << 20  # ... and the Hub streams 256 MB
    start = time.perf_counter()
    assert main(["weights", "download", "--heads", REPO, "--preset", "tiny"]) == 2
    assert last_error(capsys).startswith("error: download of mapper.safetensors from "
                                         f"{REPO} refused: more than the 2,000 bytes its index declares")
    assert hub.sent[flood] < 32 << 20, hub.sent[flood]  # stopped reading after 2,001 bytes (plus socket buffers)
    assert time.perf_counter() - start < 30


def test_a_bad_installed_head_is_named_with_the_command_that_replaces_it(hub, trained, weights, tmp_path):
    """As main installed a pickle head whose sha256 matched the index: the app starts (random faces work) and names
    the file and the command; what needs the head (text to face, the CLI's `text`) says that one line."""
    from celeblook.factory import load_models
    from celeblook.pipeline import Pipeline

    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    download_heads(REPO, TINY, log=lambda _: None, progress=False)
    bad = weights / "tiny" / "mapper.safetensors"
    bad.write_bytes(PICKLE)
    sidecar = json.loads((weights / "tiny" / "mapper.json").read_text())
    (weights / "tiny" / "mapper.json").write_text(json.dumps({**sidecar, "sha256": hashlib.sha256(PICKLE).hexdigest()}))
    pipeline = Pipeline(load_models("tiny"))
    [line] = [str(m) for m in pipeline.missing() if str(bad) in str(m)]
    assert line.startswith(f"mapper unusable ({bad}: not a safetensors file")
    assert line.endswith(f"run `celeblook weights download --heads {REPO} --preset tiny`"), line
    assert len(pipeline.random_faces(3, 1, 0.7, 256).faces) == 1  # the rest of the app works
    with pytest.raises(WeightsError) as raised:
        pipeline.text_to_face("a smiling woman", size=256)
    assert str(raised.value) == line
    done = subprocess.run([sys.executable, "-m", "celeblook", "text", "a smiling woman", "--preset", "tiny", "--size", "256",
                           "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CELEBLOOK_WEIGHTS": str(weights)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1] == f"error: {line}"


@pytest.mark.parametrize("head", ["strength", STUDENT])
def test_an_unusable_strength_head_or_student_leaves_the_rest_running(hub, trained, weights, head):
    from celeblook.factory import load_models
    from celeblook.pipeline import Pipeline

    assert main(["weights", "publish", "--repo", REPO, "--preset", "tiny", "--from", str(trained)]) == 0
    download_heads(REPO, TINY, log=lambda _: None, progress=False)
    (weights / "tiny" / f"{head}.safetensors").write_bytes(PICKLE)
    models = load_models("tiny")
    pipeline = Pipeline(models)
    [line] = [str(m) for m in pipeline.missing() if f"{head}.safetensors" in str(m)]
    assert line.endswith(f"run `celeblook weights download --heads {REPO} --preset tiny`")
    face = pipeline.text_to_face("a smiling woman", size=256).faces[0]
    if head == STUDENT:  # the teacher's image tower serves photos and scores instead
        assert models.image_encoder is models.text_encoder.visual is not None
    else:  # the learned strength says why it cannot run; a manual one runs
        learned, manual = pipeline.edit(face, "a face with glasses", strengths=["learned", 1.0], size=256).variants
        assert learned.face is None and learned.notices == [f"learned C unavailable: {line}"] and manual.face is not None
