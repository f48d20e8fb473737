"""``python -m celeblook web serve``: files are served, folders are never listed."""

from __future__ import annotations

import urllib.error
import urllib.request
from email.message import Message

import pytest

from celeblook.web.serve import serve_in_thread


@pytest.fixture()
def site(tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>site</title>")
    for folder in ("models", "vendor", "docs"):
        (tmp_path / folder).mkdir()
    (tmp_path / "models" / "mapper.onnx").write_bytes(b"onnx")
    (tmp_path / "vendor" / "ort.mjs").write_text("export {};")
    (tmp_path / "docs" / "index.html").write_text("<p>docs</p>")
    server, url = serve_in_thread(tmp_path)
    yield url
    server.shutdown()
    server.server_close()


def get(url: str) -> tuple[int, bytes, Message]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # follows /models -> /models/
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read(), err.headers


def test_folders_without_an_index_are_404_not_listings(site):
    for path in ("models/", "vendor/", "models", "vendor"):
        status, body, headers = get(site + path)
        assert status == 404, path
        assert b"mapper.onnx" not in body and b"ort.mjs" not in body and b"Directory listing" not in body, path
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"  # error pages keep the isolation headers


def test_files_and_folders_with_an_index_are_served(site):
    assert get(site + "models/mapper.onnx")[:2] == (200, b"onnx")
    status, body, headers = get(site + "vendor/ort.mjs")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert get(site + "docs/")[:2] == (200, b"<p>docs</p>")
    assert get(site)[0] == 200
