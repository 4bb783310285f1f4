"""The backend plug-in interface: how a quota plan reaches one QEMU.

Each backend says whether it can work on a domain (and why not), applies a plan, reads
per-vCPU figures for the metrics, and releases everything it set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dq_agent.agent.qmp import Execute


@dataclass(frozen=True, slots=True)
class Availability:
    available: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class QuotaPlan:
    """One VM's enforcement for the next ticks: whole-VM budget per interval + weights."""

    budget_pages: int
    interval_ms: int
    deadline_ms: int
    pool_cap_pages: int
    burst_pages: int
    vcpu_weights: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class VcpuReading:
    """Per-vCPU figures; counters are cumulative since QEMU start (None: not known)."""

    cpu_index: int
    quota_pages: int
    dirty_pages: int | None = None
    pool_drawn_pages: int | None = None
    exhausted_count: int | None = None
    sleep_ns: int | None = None
    dirty_rate_bps: int | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    enforcing: bool
    pool_pages: int | None
    vcpus: tuple[VcpuReading, ...]


class Backend(Protocol):
    name: str

    def probe(self, qmp: Execute) -> Availability: ...

    def apply(self, qmp: Execute, plan: QuotaPlan) -> None: ...

    def release(self, qmp: Execute) -> None: ...

    def read(self, qmp: Execute) -> Reading | None: ...
