"""Random packet loss with nftables `numgen random mod 100 < N drop` (sch_netem is absent).

The rules live in a table of their own inside our netns; deleting the table on exit
removes every trace. Both directions of the namespace's traffic are hit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from dq_agent.faults.netns import FaultError, FaultWindow, check_names, run


def _ruleset(table: str, percent: int, dev: str | None) -> str:
    match = f'meta oifname "{dev}" ' if dev else ""
    imatch = f'meta iifname "{dev}" ' if dev else ""
    return (
        f"table inet {table} {{\n"
        "  chain out { type filter hook output priority 0; policy accept;\n"
        f"    {match}numgen random mod 100 < {percent} drop\n  }}\n"
        "  chain in { type filter hook input priority 0; policy accept;\n"
        f"    {imatch}numgen random mod 100 < {percent} drop\n  }}\n"
        "}\n"
    )


@contextmanager
def packet_loss(ns: str, percent: int, dev: str | None = None) -> Iterator[FaultWindow]:
    """Drop `percent`% of packets sent and received in `ns` (optionally only on `dev`)."""
    check_names(ns, dev)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise FaultError(f"percent: must be an integer 1..100, got {percent!r}")
    table = f"dqfault_loss_{os.getpid()}"
    window = FaultWindow("packet-loss", f"{ns} {percent}%")
    run(["ip", "netns", "exec", ns, "nft", "-f", "-"], stdin=_ruleset(table, percent, dev))
    try:
        yield window
    finally:
        run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", table])
        window.ended = time.monotonic()


def tables(ns: str) -> list[str]:
    """nftables tables in `ns` (leak check)."""
    out = run(["ip", "netns", "exec", ns, "nft", "list", "tables"])
    return [ln.split()[-1] for ln in out.splitlines() if ln.startswith("table ")]
