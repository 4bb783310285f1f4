"""virDomainGetJobStats as a typed record with defaults (after nova's migration monitor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# libvirt constants, restated so this module imports without libvirt-python.
JOB_NONE = 0
JOB_BOUNDED = 1
JOB_UNBOUNDED = 2
JOB_COMPLETED = 3
JOB_FAILED = 4
JOB_CANCELLED = 5
OPERATION_MIGRATION_OUT = 5  # VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT


@dataclass(frozen=True, slots=True)
class JobStats:
    type: int = JOB_NONE
    operation: int = 0
    time_elapsed_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_processed: int = 0
    memory_dirty_rate_pages: int = 0
    memory_page_size: int = 4096
    memory_iteration: int = 0
    memory_bps: int = 0
    expected_downtime_ms: int = 0
    auto_converge_throttle: int = 0

    @classmethod
    def from_libvirt(cls, raw: dict[str, Any]) -> JobStats:
        def g(key: str, default: int = 0) -> int:
            v = raw.get(key, default)
            return int(v) if isinstance(v, int | float) else default

        return cls(
            type=g("type"),
            operation=g("operation"),
            time_elapsed_ms=g("time_elapsed"),
            data_total=g("data_total"),
            data_processed=g("data_processed"),
            data_remaining=g("data_remaining"),
            memory_processed=g("memory_processed"),
            memory_dirty_rate_pages=g("memory_dirty_rate"),
            memory_page_size=g("memory_page_size", 4096) or 4096,
            memory_iteration=g("memory_iteration"),
            memory_bps=g("memory_bps"),
            expected_downtime_ms=g("downtime"),
            auto_converge_throttle=g("auto_converge_throttle"),
        )

    @property
    def active(self) -> bool:
        return self.type == JOB_UNBOUNDED

    @property
    def outgoing_migration(self) -> bool:
        """An active job that is (or, without the operation field, may be) a migration out.

        libvirt >= 3.3 reports `operation`; an old daemon reports 0 and we trust the event.
        """
        return self.active and self.operation in (0, OPERATION_MIGRATION_OUT)

    @property
    def dirty_rate_bps(self) -> int:
        return self.memory_dirty_rate_pages * self.memory_page_size
