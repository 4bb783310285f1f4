"""`dirty-quota`: the patched QEMU's QMP (docs/contracts.md §5).

Every set carries `deadline-ms`: QEMU switches throttling off by itself unless the agent
renews it in time, so a dead agent cannot leave a guest throttled.
"""

from __future__ import annotations

from typing import Any

from dq_agent.agent.backends.base import Availability, QuotaPlan, Reading, VcpuReading
from dq_agent.agent.qmp import Execute, QmpError, as_bool, as_dict, as_int, as_list

_Q = "query-dirty-quota"


class DirtyQuotaBackend:
    name = "dirty-quota"

    def probe(self, qmp: Execute) -> Availability:
        try:
            q = as_dict(_Q, qmp(_Q, None))
            available = as_bool(_Q, q, "available")
        except QmpError as e:
            if e.klass == "CommandNotFound":
                return Availability(False, "QEMU has no query-dirty-quota (not the patched QEMU)")
            return Availability(False, f"query-dirty-quota failed: {e.desc}")
        if not available:
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
        q = as_dict(_Q, qmp(_Q, None))
        vcpus = []
        for raw in as_list(_Q, q.get("vcpus", []), "vcpus"):
            v = as_dict(_Q, raw)
            vcpus.append(
                VcpuReading(
                    cpu_index=as_int(_Q, v, "cpu-index"),
                    quota_pages=as_int(_Q, v, "quota-pages", 0),
                    dirty_pages=as_int(_Q, v, "dirty-pages", 0),
                    pool_drawn_pages=as_int(_Q, v, "pool-drawn-pages", 0),
                    exhausted_count=as_int(_Q, v, "exhausted-count", 0),
                    sleep_ns=as_int(_Q, v, "sleep-ns", 0),
                )
            )
        return Reading(as_bool(_Q, q, "enabled"), as_int(_Q, q, "pool-pages", 0), tuple(vcpus))
