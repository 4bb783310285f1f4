"""Policy `dirty-quota`: the patched QEMU's per-vCPU quota (contracts §5).

Every poll, the budget is computed by dq_agent.engine from the migration's measured
throughput and `set-dirty-quota` is re-issued, which also renews its deadline; the
quota counters of `query-dirty-quota` are recorded. `cancel-dirty-quota` at the end.
"""

from __future__ import annotations

import contextlib
from typing import Any

from dq_agent.engine import ThroughputEstimator, budget_pages
from dq_agent.harness.errors import PolicyUnavailable, QMPCommandError
from dq_agent.harness.policies import (
    MigrationContext,
    Policy,
    float_param,
    int_param,
    no_unknown,
)

NAME = "dirty-quota"


def quota_record(q: dict[str, Any]) -> dict[str, Any]:
    """query-dirty-quota in the progress record's `quota` shape (also the runner's)."""
    return {
        "enabled": q.get("enabled"),
        "budget_pages": q.get("budget-pages"),
        "pool_pages": q.get("pool-pages"),
        "vcpus": [
            {
                "vcpu": v.get("cpu-index"),
                "dirty_pages": v.get("dirty-pages"),
                "granted_pages": v.get("granted-pages"),
                "exhausted_count": v.get("exhausted-count"),
                "sleep_ns": v.get("sleep-ns"),
            }
            for v in q.get("vcpus", [])
        ],
    }


class DirtyQuota(Policy):
    name = NAME

    def __init__(self, params: dict[str, Any]) -> None:
        no_unknown(params, {"interval_ms", "deadline_ms", "convergence_factor", "auto_budget"})
        self.interval_ms = int_param(params, "interval_ms", 1, 1000, 10)
        self.deadline_ms = int_param(params, "deadline_ms", 100, 600000, 3000)
        self.factor = float_param(params, "convergence_factor", 0.01, 1.0, 0.5)
        self.auto = bool(params.get("auto_budget", False))
        self.estimator = ThroughputEstimator()
        super().__init__(
            {
                "interval_ms": self.interval_ms,
                "deadline_ms": self.deadline_ms,
                "convergence_factor": self.factor,
                "auto_budget": self.auto,
            }
        )

    async def check(self, ctx: MigrationContext) -> None:
        try:
            q = await ctx.src_cmd("query-dirty-quota")
        except QMPCommandError as e:
            raise PolicyUnavailable(f"this QEMU has no dirty quota ({e.desc})") from None
        if not q.get("available", False):
            raise PolicyUnavailable(str(q.get("reason", "dirty quota not available")))

    async def on_poll(self, ctx: MigrationContext, record: dict[str, Any]) -> None:
        if record["status"] not in ("active", "device", "pre-switchover"):
            return
        self.estimator = self.estimator.push(record["t"], record.get("transferred_bytes", 0))
        args: dict[str, Any] = {"interval-ms": self.interval_ms}
        if self.auto:
            args |= {"auto-budget": True, "deadline-ms": self.deadline_ms}
        else:
            thr = self.estimator.bytes_per_s
            if thr is None:
                return
            args |= {
                "budget-pages": budget_pages(thr, self.interval_ms / 1000, self.factor),
                "deadline-ms": self.deadline_ms,
            }
        with contextlib.suppress(QMPCommandError):  # migration may have just ended
            await ctx.src_cmd("set-dirty-quota", **args)
            q = await ctx.src_cmd("query-dirty-quota")
            record["quota"] = quota_record(q)

    async def finish(self, ctx: MigrationContext) -> None:
        with contextlib.suppress(Exception):
            await ctx.src_cmd("cancel-dirty-quota")


def make(params: dict[str, Any]) -> Policy:
    return DirtyQuota(params)
