"""Serve a built site on 127.0.0.1 with the headers onnxruntime-web needs.

COOP ``same-origin`` + COEP ``require-corp`` make the page cross-origin isolated, which is what enables
SharedArrayBuffer and so multi-threaded wasm; ``.mjs`` must be served as JavaScript (module imports are
refused otherwise) and ``.wasm`` as ``application/wasm`` (streaming compilation). A site built with
``--space`` is served with exactly the headers its README front matter declares (what Spaces would send).
"""

from __future__ import annotations

import functools
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import InputError
from ..remedy import command

HOST = "127.0.0.1"  # never 0.0.0.0: this is a local preview server, not a deployment
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MIME_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".gz": "application/gzip",  # the tokenizer vocabulary: decompressed by the page, so no Content-Encoding
    ".json": "application/json",
}


def front_matter_headers(site: Path) -> dict[str, str] | None:
    """``custom_headers`` of a Space's README.md front matter, or None when the site is not a Space."""
    import yaml

    readme = site / "README.md"
    if not readme.is_file():
        return None
    parts = readme.read_text(encoding="utf-8").split("---\n", 2)
    if len(parts) < 3 or parts[0].strip():
        return None
    try:
        meta = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as err:
        raise InputError(f"{readme}: the front matter is not valid YAML ({err})") from None
    return {str(k): str(v) for k, v in (meta.get("custom_headers") or {}).items()}


class SiteHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self) -> None:
        for name, value in self.server.headers.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")  # a rebuilt site must not mix with cached models
        super().end_headers()

    def list_directory(self, path: str) -> None:
        """A folder without index.html is not a page: 404, never a listing of the files in it."""
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        if self.server.verbose:
            super().log_message(format, *args)


def make_server(site: str | Path, port: int = 8000, verbose: bool = False,
                headers: dict[str, str] | None = None) -> ThreadingHTTPServer:
    """A server for ``site`` bound to 127.0.0.1:``port`` (0 = any free port); call ``serve_forever``.

    ``headers``: sent with every response; default: a Space's front-matter headers, else ISOLATION_HEADERS.
    A directory without index.html (a models folder) is served too when ``headers`` are given."""
    site = Path(site)
    if headers is None and not (site / "index.html").is_file():
        raise InputError(f"{site} is not a built site (no index.html): run `{command('web', 'build', '--out', site)}`")
    if headers is None:
        headers = front_matter_headers(site) or ISOLATION_HEADERS
    if not 0 <= port <= 65535:
        raise InputError(f"port must be 0..65535, got {port}")
    try:
        server = ThreadingHTTPServer((HOST, port), functools.partial(SiteHandler, directory=str(site)))
    except OSError as err:
        raise InputError(f"cannot listen on {HOST}:{port}: {err.strerror}") from None
    server.verbose = verbose
    server.headers = headers
    return server


def serve_in_thread(site: str | Path, port: int = 0, headers: dict[str, str] | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start serving in a daemon thread (tests, benchmarks); returns the server and its base URL."""
    server = make_server(site, port, headers=headers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}/"
