"""tests/procs.py: a command's timeout, or its exit, leaves none of its processes running, even one that started a
session of its own (as torchrun's workers do)."""

from __future__ import annotations

import subprocess
import sys
import time

import procs
import pytest

# a parent that starts a child in a new session (out of its process group's reach), says its pid, and sleeps
ESCAPING = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(float(sys.argv[1]))
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False


def child_of(out: str | None) -> int:
    return int((out or "").split()[0])


@pytest.mark.parametrize("parent_sleeps", [300, 0])
def test_nothing_a_command_started_outlives_it(parent_sleeps, tmp_path):
    log = tmp_path / "out.txt"
    with log.open("w") as out:
        if parent_sleeps:  # the timeout
            with pytest.raises(subprocess.TimeoutExpired):
                procs.run([sys.executable, "-c", ESCAPING, str(parent_sleeps)], stdout=out, timeout=20)
        else:  # the command's exit, its child still running
            assert procs.run([sys.executable, "-c", ESCAPING, "0"], stdout=out, timeout=60).returncode == 0
    pid = child_of(log.read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def test_stop_ends_a_server_and_what_it_started(tmp_path):
    log = tmp_path / "out.txt"
    with log.open("w") as out:
        server = procs.popen([sys.executable, "-c", ESCAPING, "300"], stdout=out)
        deadline = time.monotonic() + 60
        while not log.read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.stop(server, timeout=5)
    assert server.returncode is not None and not alive(child_of(log.read_text()))
