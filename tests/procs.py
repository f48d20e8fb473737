"""The tests' subprocesses: none outlives its test. A timeout, a stop, or the command's own exit kills every process
it started (torchrun's workers, a server's children, pip under dev.sh).

``subprocess.run(timeout=...)`` kills only the process it started. Killing its process group (start_new_session +
os.killpg) is not enough either: torchrun starts each worker in a session of its own, and an orphaned worker holding
the output pipe keeps the test waiting. So each command gets a tag in its environment, which every descendant
inherits, and ``kill_all`` kills the command's group and every process that carries the tag.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

TAG = "CELEBLOOK_TEST_PROCESS"


def _tagged(popen_kwargs: dict) -> tuple[dict, str]:
    token = uuid.uuid4().hex
    env = popen_kwargs.get("env")
    return {**popen_kwargs, "env": {**(os.environ if env is None else env), TAG: token}}, token


def tagged_pids(token: str) -> list[int]:
    """The processes whose environment carries ``token`` (those of this user that /proc lets us read)."""
    needle = f"{TAG}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # gone meanwhile, or another user's
                pass
    return found


def kill_all(proc: subprocess.Popen, sig: signal.Signals = signal.SIGKILL) -> None:
    """``sig`` to ``proc``'s process group and to every process started under it (see the module docstring); after
    SIGKILL, returns once they are gone (a signal is delivered after kill() returns; a zombie counts as gone)."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    for pid in tagged_pids(proc.test_token):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while sig == signal.SIGKILL and tagged_pids(proc.test_token) and time.monotonic() < deadline:
        time.sleep(0.05)


def popen(args: Sequence[str], **popen_kwargs) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session, tagged; end it with ``stop`` (or ``kill_all``)."""
    popen_kwargs, token = _tagged(popen_kwargs)
    proc = subprocess.Popen(args, start_new_session=True, **popen_kwargs)
    proc.test_token = token
    return proc


def run(args: Sequence[str], *, timeout: float, check: bool = False, capture_output: bool = False,
        input: str | bytes | None = None, **popen_kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose timeout kills every process the command started before TimeoutExpired is raised;
    whatever the command leaves running when it exits is killed too."""
    if capture_output:
        popen_kwargs.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        popen_kwargs["stdin"] = subprocess.PIPE
    with popen(args, **popen_kwargs) as proc:
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_all(proc)
            proc.communicate()  # the pipes close once every writer is gone
            raise
        finally:
            kill_all(proc)
    done = subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)
    if check:
        done.check_returncode()
    return done


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to everything ``proc`` started, SIGKILL to what is left after ``timeout`` s."""
    kill_all(proc, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    kill_all(proc)
    proc.wait()
