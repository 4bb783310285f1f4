"""Commands inside one of our own network namespaces, and the record of a fault window."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field

# Our namespaces carry a per-run suffix; the host's (unnamed) namespace is never a target.
_NS_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DEV_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
CMD_TIMEOUT_S = 10


class FaultError(RuntimeError):
    """A fault could not be injected or undone (the message names the command)."""


@dataclass
class FaultWindow:
    """When a fault was in force, on the monotonic clock (for the fault table)."""

    kind: str
    detail: str
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended if self.ended is not None else time.monotonic()) - self.started


def check_names(ns: str, dev: str | None = None) -> None:
    if not _NS_NAME.match(ns):
        raise FaultError(f"netns: not a namespace name: {ns!r}")
    if ns not in list_netns():
        raise FaultError(f"netns: {ns!r} does not exist (faults act only in our own netns)")
    if dev is not None and not _DEV_NAME.match(dev):
        raise FaultError(f"dev: not an interface name: {dev!r}")


def list_netns() -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, timeout=CMD_TIMEOUT_S
    )
    return [ln.split()[0] for ln in out.stdout.splitlines() if ln.strip()]


def run(argv: list[str], stdin: str | None = None) -> str:
    """Run one command; FaultError with its stderr when it fails."""
    try:
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise FaultError(f"{' '.join(argv)}: {e}") from None
    if p.returncode != 0:
        raise FaultError(f"{' '.join(argv)}: {p.stderr.strip() or f'exit {p.returncode}'}")
    return p.stdout
