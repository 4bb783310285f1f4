"""Who enforces dirty quota in a libvirt run: the host's dq-agent, or the runner itself.

Two enforcers on one QEMU would fight over the budget, so exactly one does:
- `dq-agent` when one runs on the source host (`auto` probes for it). The runner declares
  `dirty-quota` in the domain metadata (contracts §5), so the agent adopts the migration;
  the runner only checks that QEMU has dirty quota and records `query-dirty-quota`.
- `runner` otherwise: the harness's own `dirty-quota` policy sends `set-dirty-quota`
  through libvirt's monitor passthrough every poll, as in `--via qemu`.
"""

from __future__ import annotations

import contextlib
import shlex
from typing import Any

from dq_agent.harness.errors import HarnessError, QMPCommandError
from dq_agent.harness.policies import MigrationContext, Policy, make_policy
from dq_agent.harness.policies.dirty_quota import quota_record
from dq_agent.runner.ssh import Session

ENFORCERS = ("auto", "runner", "dq-agent")
# systemd unit of roles/dq_agent, else a dq-agent process in the host's own network
# namespace (hosts that are only namespaces share one process table; the [d] keeps pgrep
# from matching the shell that runs it).
AGENT_UNIT = "dq-agent.service"
_PGREP = "pgrep --ns $$ --nslist net -f"
AGENT_PROBE = (
    f"systemctl is-active --quiet {shlex.quote(AGENT_UNIT)} 2>/dev/null"
    f" || {_PGREP} '[d]q-agent run' >/dev/null 2>&1"
    f" || {_PGREP} '[d]q_agent[.]agent' >/dev/null 2>&1"
)


def agent_runs(s: Session) -> bool:
    return s.run(AGENT_PROBE, timeout=20)[0] == 0


def choose(requested: str, agent_running: bool, host: str) -> str:
    """The enforcer for a dirty-quota run; refuses a choice that would be unsound."""
    if requested == "auto":
        return "dq-agent" if agent_running else "runner"
    if requested == "dq-agent" and not agent_running:
        raise HarnessError(f"{host}: --dirty-quota-by dq-agent, but no dq-agent runs there")
    if requested == "runner" and agent_running:
        raise HarnessError(
            f"{host}: a dq-agent runs there and would enforce too; use --dirty-quota-by "
            "dq-agent (or auto), or stop the agent"
        )
    return requested


class AgentEnforced(Policy):
    """`dirty-quota` left to the host's dq-agent: check and observe, never set."""

    name = "dirty-quota"

    def __init__(self) -> None:
        super().__init__({})
        self._check = make_policy("dirty-quota", {})

    async def check(self, ctx: MigrationContext) -> None:
        await self._check.check(ctx)

    async def on_poll(self, ctx: MigrationContext, record: dict[str, Any]) -> None:
        if record["status"] not in ("active", "device", "pre-switchover"):
            return
        with contextlib.suppress(QMPCommandError):  # the migration may have just ended
            record["quota"] = quota_record(await ctx.src_cmd("query-dirty-quota"))
