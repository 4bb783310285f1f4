"""Backend plug-ins and the `auto` choice: the first one that can work on a domain."""

from __future__ import annotations

from dq_agent.agent.backends.base import (
    Availability,
    Backend,
    QuotaPlan,
    Reading,
    VcpuReading,
)
from dq_agent.agent.backends.dirty_limit import DirtyLimitBackend
from dq_agent.agent.backends.dirty_quota import DirtyQuotaBackend
from dq_agent.agent.backends.observe import ObserveBackend
from dq_agent.agent.qmp import Execute

NAMES = ("dirty-quota", "dirty-limit", "observe")


def make(name: str, interval_ms: int = 10) -> Backend:
    if name == "dirty-quota":
        return DirtyQuotaBackend()
    if name == "dirty-limit":
        return DirtyLimitBackend(interval_ms)
    if name == "observe":
        return ObserveBackend()
    raise ValueError(f"unknown backend {name!r}")


def choose(
    configured: str, qmp: Execute, interval_ms: int = 10
) -> tuple[Backend, dict[str, Availability]]:
    """The backend for one domain, plus every probe result (exported as metrics).

    An explicit choice that cannot work falls back to `observe` (never to a different
    enforcement), and the reason is logged and exported.
    """
    probes: dict[str, Availability] = {}
    candidates = NAMES if configured == "auto" else (configured,)
    for name in candidates:
        b = make(name, interval_ms)
        probes[name] = b.probe(qmp)
        if probes[name].available:
            return b, probes
    return ObserveBackend(), probes


__all__ = [
    "NAMES",
    "Availability",
    "Backend",
    "QuotaPlan",
    "Reading",
    "VcpuReading",
    "choose",
    "make",
]
