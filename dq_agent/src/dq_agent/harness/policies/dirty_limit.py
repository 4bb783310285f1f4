"""Policy `dirty-limit`: QEMU's per-vCPU dirty-page-rate limit (needs KVM's dirty ring).

Under TCG (or KVM without dirty-ring-size) QEMU refuses; the run is then reported as
unavailable with QEMU's own reason.
"""

from __future__ import annotations

from typing import Any

from dq_agent.harness.errors import PolicyUnavailable, QMPCommandError
from dq_agent.harness.policies import MigrationContext, Policy, int_param, no_unknown

NAME = "dirty-limit"


class DirtyLimit(Policy):
    name = NAME

    def __init__(self, params: dict[str, Any]) -> None:
        no_unknown(params, {"limit_mbps", "period_ms"})
        self.limit = int_param(params, "limit_mbps", 1, 100000, 1)
        self.period = int_param(params, "period_ms", 1, 1000, 1000)
        super().__init__({"limit_mbps": self.limit, "period_ms": self.period})

    async def check(self, ctx: MigrationContext) -> None:
        try:
            await ctx.src_cmd(
                "migrate-set-capabilities",
                capabilities=[{"capability": "dirty-limit", "state": True}],
            )
        except QMPCommandError as e:
            raise PolicyUnavailable(str(e.desc)) from None

    async def prepare(self, ctx: MigrationContext) -> None:
        await ctx.src_cmd(
            "migrate-set-parameters",
            **{"vcpu-dirty-limit": self.limit, "x-vcpu-dirty-limit-period": self.period},
        )


def make(params: dict[str, Any]) -> Policy:
    return DirtyLimit(params)
