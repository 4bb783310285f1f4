"""Process faults on a pid the caller owns: kill it (not undoable), or pause it.

`paused` (SIGSTOP, SIGCONT on exit) models a service that is down but comes back,
e.g. Prometheus or Pushgateway: connections hang or are refused, then it resumes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from dq_agent.faults.netns import FaultError, FaultWindow


def _state(pid: int) -> str:
    """One-letter state from /proc (R, S, T, Z, ...), or "" when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is dead for our purposes.
    return _state(pid) not in ("", "Z")


def _check_pid(pid: int) -> None:
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        raise FaultError(f"pid: must be a process id > 1, got {pid!r}")
    if pid == os.getpid():
        raise FaultError("pid: refusing to signal the test process itself")


def kill_process(pid: int, sig: int = signal.SIGKILL, wait_s: float = 5.0) -> FaultWindow:
    """Send `sig` and wait (bounded) until the process is gone."""
    _check_pid(pid)
    window = FaultWindow("kill", f"pid {pid} {signal.Signals(sig).name}")
    with suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + wait_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    window.ended = time.monotonic()
    if _alive(pid):
        raise FaultError(f"pid {pid}: still alive {wait_s:g}s after {signal.Signals(sig).name}")
    return window


@contextmanager
def paused(pid: int) -> Iterator[FaultWindow]:
    """The process is stopped (SIGSTOP) during the body and continued on exit."""
    _check_pid(pid)
    window = FaultWindow("paused", f"pid {pid}")
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 2.0  # stopping is asynchronous: wait until it took
    while _state(pid) not in ("T", "t", "", "Z") and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield window
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        window.ended = time.monotonic()
