"""`dirty-quota`: the patched QEMU's QMP (docs/contracts.md §5).

Every set carries `deadline-ms`: QEMU switches throttling off by itself unless the agent
renews it in time, so a dead agent cannot leave a guest throttled.
"""

from __future__ import annotations

from typing import Any

from dq_agent.agent.backends.base import Availability, QuotaPlan, Reading, VcpuReading
from dq_agent.agent.qmp import Execute, QmpError


class DirtyQuotaBackend:
    name = "dirty-quota"

    def probe(self, qmp: Execute) -> Availability:
        try:
            q = qmp("query-dirty-quota", None)
        except QmpError as e:
            if e.klass == "CommandNotFound":
                return Availability(False, "QEMU has no query-dirty-quota (not the patched QEMU)")
            return Availability(False, f"query-dirty-quota failed: {e.desc}")
        if not q.get("available", False):
            return Availability(False, str(q.get("reason", "QEMU says dirty quota unavailable")))
        return Availability(True)

    def apply(self, qmp: Execute, plan: QuotaPlan) -> None:
        args: dict[str, Any] = {
            "budget-pages": plan.budget_pages,
            "interval-ms": plan.interval_ms,
            "deadline-ms": plan.deadline_ms,
            "pool-cap-pages": plan.pool_cap_pages,
            "burst-pages": plan.burst_pages,
        }
        if plan.vcpu_weights:
            args["weights"] = list(plan.vcpu_weights)
        qmp("set-dirty-quota", args)

    def release(self, qmp: Execute) -> None:
        qmp("cancel-dirty-quota", None)

    def read(self, qmp: Execute) -> Reading | None:
        q = qmp("query-dirty-quota", None)
        vcpus = tuple(
            VcpuReading(
                cpu_index=int(v["cpu-index"]),
                quota_pages=int(v.get("quota-pages", 0)),
                dirty_pages=int(v.get("dirty-pages", 0)),
                pool_drawn_pages=int(v.get("pool-drawn-pages", 0)),
                exhausted_count=int(v.get("exhausted-count", 0)),
                sleep_ns=int(v.get("sleep-ns", 0)),
            )
            for v in q.get("vcpus", [])
        )
        return Reading(bool(q.get("enabled")), int(q.get("pool-pages", 0)), vcpus)
