"""Two network namespaces joined by a veth pair, in the fault tests' 198.18.48.0/20.

Names carry a per-run suffix; everything is deleted on exit, even on failure.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

PREFIX = "dqf"  # every netns the fault tests create starts with this


@dataclass(frozen=True)
class NetPair:
    ns_a: str
    ns_b: str
    dev_a: str
    dev_b: str
    ip_a: str
    ip_b: str

    def exec_a(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns_a, *argv]

    def exec_b(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns_b, *argv]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def our_netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return {ln.split()[0] for ln in out.stdout.splitlines() if ln.startswith(PREFIX)}


@contextmanager
def net_pair(rate: str | None = None) -> Iterator[NetPair]:
    """Two netns; `rate` (e.g. "20mbit") shapes a->b with an htb class like the harness."""
    tag = f"{os.getpid() % 100000}{random.randrange(1000):03d}"
    # One /30 out of 198.18.48.0/20 (1024 of them), picked at random per run.
    base = (198 << 24) | (18 << 16) | (48 << 8) | (random.randrange(1024) * 4)
    ip_a = f"{base >> 24 & 255}.{base >> 16 & 255}.{base >> 8 & 255}.{(base & 255) + 1}"
    ip_b = f"{base >> 24 & 255}.{base >> 16 & 255}.{base >> 8 & 255}.{(base & 255) + 2}"
    pair = NetPair(f"{PREFIX}{tag}a", f"{PREFIX}{tag}b", f"dqf{tag}a", f"dqf{tag}b", ip_a, ip_b)
    created: list[str] = []
    try:
        for ns in (pair.ns_a, pair.ns_b):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip(
            "-n",
            pair.ns_a,
            "link",
            "add",
            pair.dev_a,
            "type",
            "veth",
            "peer",
            "name",
            pair.dev_b,
            "netns",
            pair.ns_b,
        )
        for ns, dev, ip in ((pair.ns_a, pair.dev_a, ip_a), (pair.ns_b, pair.dev_b, ip_b)):
            _ip("-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            _ip("-n", ns, "link", "set", "dev", dev, "up")
            _ip("-n", ns, "link", "set", "dev", "lo", "up")
        if rate:
            tc = ["tc", "-n", pair.ns_a]
            subprocess.run(
                [
                    *tc,
                    "qdisc",
                    "add",
                    "dev",
                    pair.dev_a,
                    "root",
                    "handle",
                    "1:",
                    "htb",
                    "default",
                    "10",
                ],
                check=True,
                capture_output=True,
                timeout=10,
            )
            subprocess.run(
                [
                    *tc,
                    "class",
                    "add",
                    "dev",
                    pair.dev_a,
                    "parent",
                    "1:",
                    "classid",
                    "1:10",
                    "htb",
                    "rate",
                    rate,
                    "ceil",
                    rate,
                ],
                check=True,
                capture_output=True,
                timeout=10,
            )
        yield pair
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
