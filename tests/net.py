"""Loopback helpers for the tests that launch servers."""

import json
import socket
import urllib.request


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (servers in tests bind loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_call(url: str, endpoint: str, data: list, session_hash: str | None = None) -> tuple[str, object]:
    """POST /gradio_api/call/<endpoint> as a plain HTTP client (in ``session_hash``'s session, else a new one), then
    read the event stream: (event, data)."""
    request = urllib.request.Request(f"{url}gradio_api/call/{endpoint}",
                                     json.dumps({"data": data, "session_hash": session_hash}).encode(),
                                     {"Content-Type": "application/json"})
    event_id = json.load(urllib.request.urlopen(request, timeout=60))["event_id"]
    event = None
    with urllib.request.urlopen(f"{url}gradio_api/call/{endpoint}/{event_id}", timeout=120) as stream:
        for line in stream.read().decode().splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                return event, json.loads(line.split(":", 1)[1])
    raise AssertionError("the event stream ended without a result")
