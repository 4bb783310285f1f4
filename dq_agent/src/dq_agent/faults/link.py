"""Link cut: `ip link set DEV down` inside our netns, `up` again on exit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from dq_agent.faults.netns import FaultWindow, check_names, run


@contextmanager
def link_cut(ns: str, dev: str) -> Iterator[FaultWindow]:
    """The link is down for the body of the `with`; it comes back up even on error."""
    check_names(ns, dev)
    window = FaultWindow("link-cut", f"{ns}/{dev}")
    run(["ip", "-n", ns, "link", "set", "dev", dev, "down"])
    try:
        yield window
    finally:
        run(["ip", "-n", ns, "link", "set", "dev", dev, "up"])
        window.ended = time.monotonic()
