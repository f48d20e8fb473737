"""``python -m celeblook web build``: it replaces only a folder that a build made and that holds only what it wrote,
copies only plain files listed by an export, and a refused or failed build leaves every folder as it was.

The exports are a small slice of the tiny export (its manifest and strength head): a whole build from it takes
seconds, and every refusal is decided before the models would matter.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _export_tiny import tiny_export

from celeblook.errors import CelebError
from celeblook.web.build import build_site
from celeblook.web.folders import BUILD_MARK

REPO = Path(__file__).resolve().parents[1]
needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: a build fetches the page's runtime")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    return tiny_export(tmp_path_factory.getbasetemp())


@pytest.fixture()
def exports(tmp_path, tiny) -> Path:
    """An export directory of one small file: the tiny export's strength head and its manifest entry."""
    manifest = json.loads((tiny / "manifest.json").read_text())
    manifest["files"] = [e for e in manifest["files"] if e["file"] == "strength.onnx"]
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy2(tiny / "strength.onnx", folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def listing(folder: Path) -> dict[str, bytes | str | None]:
    """Every path under ``folder`` (hidden ones included) with its content, link target or None for a folder."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        found[key] = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
    return found


def web_build(*args: str, **env: str) -> tuple[int, str]:
    """``python -m celeblook web build ARGS`` in its own process group (killed whole on timeout); exit code, stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "celeblook", "web", "build", *args], cwd=REPO,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, err


def assert_refused(code: int, err: str, *words: str) -> None:
    assert code == 2 and "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1, err
    assert all(w in err for w in words), err


def with_entry(exports: Path, name: str, data: bytes) -> None:
    """List one more file in the manifest, with the sha256 and size of ``data``."""
    manifest = json.loads((exports / "manifest.json").read_text())
    manifest["files"].append({**manifest["files"][0], "file": name, "sha256": hashlib.sha256(data).hexdigest(),
                              "bytes": len(data)})
    (exports / "manifest.json").write_text(json.dumps(manifest))


def test_an_out_it_did_not_make_is_refused_and_kept(tmp_path, exports):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "index.html").write_text("x")  # looks like a site, but no build wrote it
    (tmp_path / "v" / "precious.txt").write_text("y")
    before = listing(tmp_path)
    assert_refused(*web_build("--out", str(tmp_path / "v"), "--exports", str(exports)), "not a previous site build")
    assert listing(tmp_path) == before


def test_a_models_folder_it_did_not_make_is_refused_and_kept(tmp_path, exports):
    (tmp_path / "site-models").mkdir()
    (tmp_path / "site-models" / "manifest.json").write_text("{}")
    (tmp_path / "site-models" / "mine.txt").write_text("mine")
    before = listing(tmp_path)
    code, err = web_build("--out", str(tmp_path / "site"), "--exports", str(exports), "--models-url", "https://example.org/m/")
    assert_refused(code, err, "site-models", "not the models folder of a previous site build")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("link", ["stolen.onnx", "manifest.json"])
def test_symlinks_in_an_export_are_refused(tmp_path, exports, link):
    secret = tmp_path / "secret"
    secret.mkdir()
    if link == "manifest.json":  # a manifest elsewhere, listing files that are in the export
        (exports / "manifest.json").rename(secret / "manifest.json")
        target = secret / "manifest.json"
    else:  # any readable file, listed with its true sha256
        target = secret / "id_key"
        target.write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
        with_entry(exports, link, target.read_bytes())
    (exports / link).symlink_to(target)
    before = listing(tmp_path)
    assert_refused(*web_build("--out", str(tmp_path / "site"), "--exports", str(exports)), f"{link} is a symbolic link")
    assert listing(tmp_path) == before


def test_a_folder_that_is_not_an_export_leaves_nothing(tmp_path):
    before = listing(tmp_path)
    assert_refused(*web_build("--out", str(tmp_path / "site"), "--exports", "/etc"), "has no manifest.json")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("linked", ["site", "site-models"])
def test_an_out_that_is_a_symlink_is_refused(tmp_path, exports, linked):
    real = tmp_path / "real"
    real.mkdir()
    (real / "index.html").write_text("x")
    (real / "manifest.json").write_text("{}")
    (tmp_path / linked).symlink_to(real)
    before = listing(tmp_path)
    code, err = web_build("--out", str(tmp_path / "site"), "--exports", str(exports), "--models-url", "https://example.org/m/")
    assert_refused(code, err, f"{linked} is a symbolic link")
    assert listing(tmp_path) == before


def test_constants_that_are_not_an_object_are_one_line(tmp_path, exports):
    manifest = json.loads((exports / "manifest.json").read_text())
    manifest["constants"] = ["w_avg", "clip"]
    (exports / "manifest.json").write_text(json.dumps(manifest))
    before = listing(tmp_path)
    assert_refused(*web_build("--out", str(tmp_path / "site"), "--exports", str(exports)), "constants are not a JSON object")
    assert listing(tmp_path) == before


def _constant(name, value):
    def change(manifest, _folder):
        manifest["constants"][name] = value
    return change


def _entry(key, value):
    def change(manifest, _folder):
        manifest["files"][0][key] = value
    return change


def _listed_folder(manifest, folder):
    (folder / "more.onnx").mkdir()
    manifest["files"].append({**manifest["files"][0], "file": "more.onnx"})


def _listed_missing(manifest, _folder):
    manifest["files"].append({**manifest["files"][0], "file": "gone.onnx"})


BAD_EXPORTS = {  # what is wrong -> (how to make it, what the one line says)
    "w_avg not numbers": (_constant("w_avg", "0.1, 0.2"), "malformed constant 'w_avg'"),
    "clip without mean": (_constant("clip", {"size": 224, "std": [1, 1, 1]}), "malformed constant 'clip'"),
    "c_max a string": (_constant("c_max", "3"), "malformed constant 'c_max'"),
    "not an .onnx file": (_entry("file", "notes.txt"), "only .onnx files"),
    "wrong sha256": (_entry("sha256", "0" * 64), "does not match its sha256"),
    "wrong size": (_entry("bytes", 7), "its manifest says 7"),
    "a folder listed": (_listed_folder, "is not a regular file"),
    "a file missing": (_listed_missing, "gone.onnx is listed"),
}


@needs_npm
@pytest.mark.parametrize("case", BAD_EXPORTS)
def test_a_bad_export_is_one_line_and_leaves_nothing(tmp_path, exports, case):
    change, says = BAD_EXPORTS[case]
    manifest = json.loads((exports / "manifest.json").read_text())
    change(manifest, exports)
    (exports / "manifest.json").write_text(json.dumps(manifest))
    before = listing(tmp_path)
    with pytest.raises(CelebError, match=says) as raised:
        build_site(tmp_path / "out" / "site", exports=exports)
    assert "\n" not in str(raised.value)
    assert listing(tmp_path) == before  # not even out/, the parent it would have made


def test_a_failed_space_build_leaves_nothing(tmp_path, tmp_path_factory):
    empty = str(tmp_path_factory.mktemp("no_weights"))
    before = listing(tmp_path)
    code, err = web_build("--space", str(tmp_path / "space"), "--preset", "ffhq",  # no weights: the export fails
                          CELEBLOOK_WEIGHTS=empty, HF_HOME=empty, HF_HUB_OFFLINE="1")
    assert_refused(code, err, "nothing to export")
    assert listing(tmp_path) == before


@needs_npm
def test_a_previous_build_is_replaced_only_by_a_complete_one(tmp_path, exports, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()  # an empty folder is fine to build into
    build_site(site, exports=exports, space=True)
    assert (site / BUILD_MARK).is_file() and (site / "models" / "strength.onnx").is_file()
    built = listing(tmp_path)

    def disk_full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(site / "models" / "prompts_fp16.bin"))

    monkeypatch.setattr("celeblook.web.build.write_prompt_bank", disk_full)  # long after the build started writing
    with pytest.raises(CelebError, match="No space left on device"):
        build_site(site, exports=exports, space=True)
    monkeypatch.undo()
    assert listing(tmp_path) == built  # the previous build, untouched, and no half-built sibling

    (site / "site.json").unlink()
    build_site(site, exports=exports)
    assert (site / "site.json").is_file() and not (site / "README.md").exists()  # replaced by the new build
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]

    (site / "vendor" / "notes.txt").write_text("mine")  # a file the build did not write makes it refuse
    kept = listing(tmp_path)
    with pytest.raises(CelebError, match="also holds vendor/notes.txt"):
        build_site(site, exports=exports)
    assert listing(tmp_path) == kept


@needs_npm
def test_models_url_builds_two_marked_folders_and_replaces_both(tmp_path, exports):
    for _ in range(2):
        build_site(tmp_path / "site", exports=exports, models_url="https://example.org/m/")
        assert (tmp_path / "site-models" / "strength.onnx").is_file() and not (tmp_path / "site" / "models" / "strength.onnx").exists()
        assert (tmp_path / "site-models" / BUILD_MARK).is_file() and (tmp_path / "site" / BUILD_MARK).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "site", "site-models"]
