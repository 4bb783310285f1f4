"""One real harness migration with a fault injected mid-flight, and the checks every fault
owes: guest alive on exactly one host, 0 bad pages, no throttle left, nothing leaked.

The fault rides on a wrapper policy: the harness awaits `on_poll` every ~80 ms with the
progress record, so the wrapper starts/ends the fault at migration-relative times and
samples the throttle state around it, without touching the harness's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import REPO

from dq_agent.harness import Link, RunOptions, load_scenario
from dq_agent.harness.policies import MigrationContext, Policy, make_policy
from dq_agent.harness.run import Run

FAULT_NET = ipaddress.ip_network("198.18.48.0/20")  # contracts §7: fault tests
TABLE_DIR = REPO / "results" / "faults"
RECOVERY_WINDOW_S = 3.0

# A skewed guest: vCPU0 dirties as fast as TCG lets it over 8 MiB, vCPU1 only computes.
SKEWED = {
    "name": "fault-skewed",
    "memory_mib": 128,
    "link_mbit": 100,
    "baseline_s": 2,
    "timeout_s": 25,
    "report_ms": 250,
    "vcpus": [
        {"phases": [{"kind": "dirty", "rate_mbps": 0, "ws_mib": 8, "pattern": "seq"}]},
        {"phases": [{"kind": "compute"}]},
    ],
}


class FaultLink(Link):
    """The harness's link, moved into the fault tests' own address range."""

    def __post_init__(self) -> None:
        super().__post_init__()
        subnets = list(FAULT_NET.subnets(new_prefix=30))
        hosts = list(subnets[int(self.suffix, 16) % len(subnets)].hosts())
        self.src_ip, self.dst_ip = str(hosts[0]), str(hosts[1])

    @property
    def src_dev(self) -> str:
        return str(self._veth_s)  # type: ignore[attr-defined]


# A fault: given the run, enter something (a context manager that undoes it) or act once.
FaultStart = Callable[[Any], AbstractContextManager[Any] | None]


@dataclass
class Sample:
    t: float
    status: str
    transferred: int
    throttle_pct: int | None
    quota_enabled: bool | None
    budget_pages: int | None


@dataclass
class FaultPlan:
    name: str
    start: FaultStart
    at_s: float = 3.0  # migration-relative start
    hold_s: float | None = 3.0  # None: until the migration ends


@dataclass
class Observed:
    samples: list[Sample] = field(default_factory=list)
    fault_started: float | None = None  # migration-relative
    fault_ended: float | None = None
    terminal: Sample | None = None
    quota_after: dict[str, Any] | None = None  # query-dirty-quota once the migration ended
    released_after_s: float | None = None  # fault start -> throttle off (dst kill)
    dst_quota: dict[str, Any] | None = None  # query-dirty-quota on the destination QEMU
    pids: list[int] = field(default_factory=list)
    error: str | None = None


class FaultyPolicy(Policy):
    """Delegates to the real policy; injects the fault and watches the throttle."""

    def __init__(self, inner: Policy, plan: FaultPlan | None, obs: Observed) -> None:
        super().__init__(inner.params)
        self.inner, self.plan, self.obs = inner, plan, obs
        self.name = inner.name
        self._stack = contextlib.ExitStack()

    async def check(self, ctx: MigrationContext) -> None:
        await self.inner.check(ctx)

    async def prepare(self, ctx: MigrationContext) -> None:
        run: Any = ctx
        self.obs.pids = [p.proc.pid for p in (run.src, run.dst) if p.proc is not None]
        await self.inner.prepare(ctx)

    async def _quota(self, ctx: MigrationContext) -> dict[str, Any] | None:
        try:
            q = await asyncio.wait_for(ctx.src_cmd("query-dirty-quota"), 3)
        except Exception:  # stock QEMU: no such command
            return None
        return dict(q)

    async def on_poll(self, ctx: MigrationContext, record: dict[str, Any]) -> None:
        await self.inner.on_poll(ctx, record)
        t = record["t"]
        q = record.get("quota") or {}
        s = Sample(t, record["status"], int(record.get("transferred_bytes") or 0),
                   record.get("throttle_pct"), q.get("enabled"), q.get("budget_pages"))  # fmt: skip
        self.obs.samples.append(s)
        plan = self.plan
        if plan is None:
            return
        if self.obs.fault_started is None and t >= plan.at_s and s.status == "active":
            self.obs.fault_started = t
            cm = plan.start(ctx)
            if cm is not None:
                self._stack.enter_context(cm)
            else:
                self.obs.fault_ended = t
        elif (
            self.obs.fault_started is not None
            and self.obs.fault_ended is None
            and plan.hold_s is not None
            and t >= self.obs.fault_started + plan.hold_s
        ):
            self._end_fault(t)
        if s.status in ("completed", "failed", "cancelled"):
            self.obs.terminal = s

    def _end_fault(self, t: float) -> None:
        self._stack.close()
        self.obs.fault_ended = t

    async def finish(self, ctx: MigrationContext) -> None:
        if self.obs.fault_ended is None and self.obs.fault_started is not None:
            self._end_fault(ctx.elapsed())
        # Before the policy's own cleanup (which cancels the quota): did QEMU let go by
        # itself? Poll up to 2 s after the migration ended.
        deadline = time.monotonic() + 2.0
        q = await self._quota(ctx)
        while q is not None and q.get("enabled") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            q = await self._quota(ctx)
        self.obs.quota_after = q
        if self.obs.fault_started is not None and (q is None or not q.get("enabled")):
            self.obs.released_after_s = ctx.elapsed() - self.obs.fault_started
        await self.inner.finish(ctx)
        run_: Any = ctx
        with contextlib.suppress(Exception):  # stock QEMU or a dead destination: None
            self.obs.dst_quota = dict(await asyncio.wait_for(run_.dst.cmd("query-dirty-quota"), 3))
        # Let the guest report for a while after the end: its throughput then shows
        # whether any throttle (auto-converge's or the quota) is still holding it back.
        await asyncio.sleep(RECOVERY_WINDOW_S)
        q2 = await self._quota(ctx)
        if q2 is not None and q2.get("enabled"):
            self.obs.error = "dirty quota still enabled after the policy finished"


def qemu_binary_for(policy: str) -> str | None:
    """The patched QEMU for dirty-quota (cached build), the host's QEMU otherwise."""
    if policy != "dirty-quota":
        return "/usr/bin/qemu-system-x86_64"
    if os.environ.get("DQ_QEMU"):
        return os.environ["DQ_QEMU"]
    tool = REPO / "tools" / "build-qemu.sh"
    if not tool.exists():
        return None
    out = subprocess.run([str(tool), "--print-path"], capture_output=True, text=True)
    if out.returncode != 0:
        return None  # not built yet
    tree = subprocess.run([str(tool), "--tree"], capture_output=True, text=True)
    binary = Path(tree.stdout.strip().splitlines()[-1]) / "bin" / "qemu-system-x86_64"
    return str(binary) if os.access(binary, os.X_OK) else None


@dataclass
class FaultResult:
    fault: str
    policy: str
    doc: dict[str, Any]
    obs: Observed
    wall_s: float
    link_ns: tuple[str, str]
    leaked: list[str]

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.doc["summary"])


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def run_with_fault(policy: str, plan: FaultPlan | None, scenario: dict[str, Any] | None = None,
                   params: dict[str, Any] | None = None) -> FaultResult:  # fmt: skip
    qemu = qemu_binary_for(policy)
    assert qemu is not None
    sc = load_scenario(dict(scenario or SKEWED))
    obs = Observed()
    wrapped = FaultyPolicy(make_policy(policy, params), plan, obs)
    opts = RunOptions(qemu=qemu, accel="tcg")
    t = time.monotonic()
    with FaultLink(sc.link_mbit) as link:
        doc = asyncio.run(Run(sc, wrapped, opts, link).execute())
        ns = (link.src_ns, link.dst_ns)
    wall = time.monotonic() - t
    from dq_agent.faults.netns import list_netns

    leaked = [f"netns {n}" for n in ns if n in list_netns()]
    leaked += [f"pid {p}" for p in obs.pids if _pid_alive(p)]
    return FaultResult(plan.name if plan else "none", policy, doc, obs, wall, ns, leaked)


def assert_fault_invariants(r: FaultResult) -> None:
    """What every fault owes (issue 9): one live guest, intact memory, no throttle, no leak."""
    s = r.summary
    assert s["alive_on"] in ("source", "destination"), s["alive_on"]
    integ = s["integrity"]
    assert integ["checked"] and integ["bad_pages"] == 0, integ
    assert r.obs.error is None, r.obs.error
    if r.obs.quota_after is not None:
        assert not r.obs.quota_after.get("enabled"), r.obs.quota_after
    assert not r.leaked, r.leaked
    if r.obs.dst_quota is not None:
        assert not r.obs.dst_quota.get("enabled"), f"destination throttled: {r.obs.dst_quota}"
    if s["alive_on"] == "source":
        # No throttle remains, seen from inside the guest: the dirtier runs as fast after
        # the migration as before it (side by side, so a loaded host cancels out). On the
        # destination the guest's periodic reports stall after the switch-over (harness
        # issue, see docs/reliability.md), so there the QMP query above is the evidence.
        # A quota left on would hold vCPU0 to ~1 % (budget pages vs its free rate) and
        # auto-converge at 99 % to a few %: 0.35 is far above both, below host noise.
        rec = recovered_ratio(r.doc)
        assert rec is not None and rec > 0.35, f"vCPU0 throughput after/before = {rec}"


def recovered_ratio(doc: dict[str, Any]) -> float | None:
    """vCPU0 ops/s after the migration ended (on the side the guest lives on) vs before it."""
    summ = doc["summary"]
    side = {"source": "src", "destination": "dst"}.get(summ.get("alive_on") or "")
    tl = [x for x in doc["guest_timeline"] if x["vcpu"] == 0 and x.get("t_mig") is not None]
    before = [x["ops_per_s"] for x in tl if x["t_mig"] < 0 and x["side"] == "src"]
    after = [
        x["ops_per_s"] for x in tl if x["side"] == side and x["t_mig"] >= summ["total_time_s"] + 0.5
    ]
    if not before or not after:
        return None
    b = statistics.median(before)  # medians: one slow report on a busy host is noise
    return statistics.median(after) / b if b > 0 else None


def table_row(r: FaultResult, recover_s: float | None, extra: str = "") -> dict[str, Any]:
    s = r.summary
    return {
        "fault": r.fault,
        "policy": r.policy,
        "outcome": f"{s['status']}, guest on {s['alive_on']}",
        "migration_s": s["total_time_s"],
        "recover_s": None if recover_s is None else round(recover_s, 2),
        "bad_pages": s["integrity"]["bad_pages"],
        "throttle_left": bool(r.obs.quota_after and r.obs.quota_after.get("enabled")),
        "vcpu0_after_vs_before": (
            round(v, 2)
            if s["alive_on"] == "source" and (v := recovered_ratio(r.doc)) is not None
            else None
        ),
        "dst_quota_enabled": None if r.obs.dst_quota is None else r.obs.dst_quota.get("enabled"),
        "wall_s": round(r.wall_s, 1),
        "note": extra,
    }


ROWS: list[dict[str, Any]] = []  # this session's fault table


def record_row(row: dict[str, Any]) -> Path:
    """Add a row and rewrite the table, so even a partial session leaves its numbers."""
    ROWS.append(row)
    return write_table(ROWS)


def write_table(rows: list[dict[str, Any]]) -> Path:
    TABLE_DIR.mkdir(parents=True, exist_ok=True)
    (TABLE_DIR / "fault-table.json").write_text(json.dumps(rows, indent=1) + "\n")
    cols = ["fault", "policy", "outcome", "migration_s", "recover_s", "bad_pages",
            "throttle_left", "dst_quota_enabled", "vcpu0_after_vs_before", "wall_s",
            "note"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        lines.append("| " + " | ".join("-" if row[c] is None else str(row[c]) for c in cols) + " |")
    out = TABLE_DIR / "fault-table.md"
    out.write_text("\n".join(lines) + "\n")
    return out
