"""Bandwidth collapse: lower the shaped rate of our link (htb class or tbf qdisc) mid-run.

The original rate is read back from tc first and restored on exit.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dq_agent.faults.netns import FaultError, FaultWindow, check_names, run

_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}
_HTB_CLASS = re.compile(
    r"^class htb (?P<id>\d+:\d+) (?:root|parent (?P<parent>\d+:\d*)) .*?"
    r"rate (?P<rate>\d+(?:\.\d+)?[KMGT]?bit) ceil (?P<ceil>\d+(?:\.\d+)?[KMGT]?bit)"
    r".*?burst (?P<burst>\S+) cburst (?P<cburst>\S+)"
)


def bits(text: str) -> int:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?bit)", text, flags=re.I)
    if not m:
        raise FaultError(f"tc: cannot read rate {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


@dataclass(frozen=True)
class Shaper:
    """One rate limiter on the device, and how to re-apply it at another rate."""

    kind: str  # "htb" | "tbf"
    rate_bps: int  # bits per second
    args: tuple[str, ...]  # tc arguments identifying it (before the rate)
    extra: tuple[str, ...]  # tc arguments that follow the rate


def find_shaper(ns: str, dev: str) -> Shaper:
    """The htb leaf class or tbf root qdisc that shapes `dev` (the harness uses either)."""
    qdiscs = json.loads(run(["tc", "-n", ns, "-j", "qdisc", "show", "dev", dev]) or "[]")
    for q in qdiscs:
        if q.get("kind") == "tbf":
            o = q["options"]
            where = ("root",) if q.get("root") else ("parent", str(q.get("parent", "")))
            return Shaper(
                "tbf",
                int(o["rate"]) * 8,
                ("handle", q["handle"], *where, "tbf"),
                ("burst", str(o["burst"]), "latency", f"{int(o['lat'])}us"),
            )
    for line in run(["tc", "-n", ns, "class", "show", "dev", dev]).splitlines():
        m = _HTB_CLASS.match(line.strip())
        if m:
            where = ("parent", m["parent"]) if m["parent"] else ("root",)
            return Shaper(
                "htb",
                bits(m["rate"]),
                (*where, "classid", m["id"], "htb"),
                ("burst", m["burst"], "cburst", m["cburst"]),
            )
    raise FaultError(f"tc: no htb class or tbf qdisc shapes {ns}/{dev}")


def apply_rate(ns: str, dev: str, sh: Shaper, rate_bps: int) -> None:
    rate = f"{max(rate_bps, 8000)}bit"
    ceil = ("ceil", rate) if sh.kind == "htb" else ()
    run(
        [
            "tc",
            "-n",
            ns,
            "class" if sh.kind == "htb" else "qdisc",
            "change",
            "dev",
            dev,
            *sh.args,
            "rate",
            rate,
            *ceil,
            *sh.extra,
        ]
    )


@contextmanager
def bandwidth_collapse(ns: str, dev: str, factor: int = 10) -> Iterator[FaultWindow]:
    """The link runs at 1/factor of its shaped rate during the body."""
    check_names(ns, dev)
    if isinstance(factor, bool) or not isinstance(factor, int) or not 2 <= factor <= 1000:
        raise FaultError(f"factor: must be an integer 2..1000, got {factor!r}")
    sh = find_shaper(ns, dev)
    window = FaultWindow("bandwidth-collapse", f"{ns}/{dev} {sh.rate_bps}->{sh.rate_bps // factor}")
    apply_rate(ns, dev, sh, sh.rate_bps // factor)
    try:
        yield window
    finally:
        apply_rate(ns, dev, sh, sh.rate_bps)
        window.ended = time.monotonic()
