"""The app server's memory (`python app.py`, tiny preset, in its own process): hostile uploads are refused before
any pixel is decoded, and sessions that each make one face keep little.

The resident set is read from /proc/PID/status (VmRSS now, VmHWM the peak since it was last reset).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import procs
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hostile_images import gif_with_huge_later_frame, ico_bomb, psd, tiff_with_huge_later_page, webp_of_zeros
from net import free_port, raw_call
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BOUND_MB = 150  # what any of these may add to the server's resident set
NOT_READ = "not an image this app can read"


def status_mb(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(key + ":")) / 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> tuple[int, str]:
    """(pid, url) of `python app.py` on the tiny preset (it and whatever it starts stopped at the end)."""
    port, log = free_port(), tmp_path_factory.mktemp("server") / "app.log"
    env = {**os.environ, "CELEBLOOK_PRESET": "tiny", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio"))}
    process = procs.popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"no answer in 300 s: {log.read_text()[-2000:]}"
            try:
                urllib.request.urlopen(f"{url}gradio_api/info", timeout=5)
                break
            except OSError:
                time.sleep(1)
        yield process.pid, url
    finally:
        procs.stop(process)


def test_hostile_uploads_cost_the_server_no_memory(server, tmp_path):
    pid, url = server
    client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
    photo = tmp_path / "photo.png"
    Image.new("RGB", (200, 200), (120, 110, 100)).save(photo)
    for _ in range(2):  # the steady state: models and buffers touched once
        client.predict(handle_file(str(photo)), True, 0, 0, 256, api_name="/invert")
    steady = status_mb(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    expected = {ico_bomb(tmp_path / "bomb.ico"): NOT_READ,  # 642 KB; decoded: 676 MB
                psd(tmp_path / "photo.psd"): NOT_READ,
                webp_of_zeros(tmp_path / "zeros.webp"): "over the 16-megapixel limit for WebP",  # 2 KB; decoded: 750 MB
                gif_with_huge_later_frame(tmp_path / "later.gif"): "using its first frame",  # then 16000 x 16000
                tiff_with_huge_later_page(tmp_path / "later.tif"): "using its first frame"}
    answers = {}
    for path in expected:
        try:
            *_, answers[path] = client.predict(handle_file(str(path)), True, 0, 0, 256, api_name="/invert")  # the notes
        except AppError as err:
            answers[path] = str(err)
    assert status_mb(pid, "VmHWM") - steady < BOUND_MB, (steady, status_mb(pid, "VmHWM"))
    for path, message in expected.items():
        assert message in answers[path], (path.name, answers[path])


def test_a_hundred_new_sessions_keep_little(server):
    """Each call opens a session that keeps its last face: 1024 px random faces held 4-8 MB a session."""
    pid, url = server

    def in_a_new_session(seed: int) -> str:
        return raw_call(url, "random_face", [seed, 1, 0.7, 1024], uuid.uuid4().hex)[0]

    assert [in_a_new_session(seed) for seed in range(5)] == ["complete"] * 5  # the steady state
    steady = status_mb(pid, "VmRSS")
    assert [in_a_new_session(seed) for seed in range(100)] == ["complete"] * 100
    assert status_mb(pid, "VmRSS") - steady < BOUND_MB, (steady, status_mb(pid, "VmRSS"))
