"""Policy `auto-converge`: QEMU's throttle that slows every vCPU alike."""

from __future__ import annotations

from typing import Any

from dq_agent.harness.policies import MigrationContext, Policy, int_param, no_unknown

NAME = "auto-converge"


class AutoConverge(Policy):
    name = NAME

    def __init__(self, params: dict[str, Any]) -> None:
        no_unknown(params, {"initial", "increment", "tailslow"})
        self.initial = int_param(params, "initial", 1, 99, 20)
        self.increment = int_param(params, "increment", 1, 100, 10)
        self.tailslow = bool(params.get("tailslow", False))
        super().__init__(
            {"initial": self.initial, "increment": self.increment, "tailslow": self.tailslow}
        )

    async def prepare(self, ctx: MigrationContext) -> None:
        await ctx.src_cmd(
            "migrate-set-capabilities",
            capabilities=[{"capability": "auto-converge", "state": True}],
        )
        await ctx.src_cmd(
            "migrate-set-parameters",
            **{
                "cpu-throttle-initial": self.initial,
                "cpu-throttle-increment": self.increment,
                "cpu-throttle-tailslow": self.tailslow,
            },
        )


def make(params: dict[str, Any]) -> Policy:
    return AutoConverge(params)
