"""QEMU-like pre-copy, time-stepped in chunks (not per page).

State: the pages still to send in this pass (`pending`), and per vCPU the pages it has
newly dirtied since the last bitmap sync (`dirtied`). Between events every rate is
constant, so each chunk is advanced in closed form:
  sequential writer: dirtied grows linearly until the working set is all dirty;
  random writer:     dirtied = W - (W - dirtied) * exp(-writes / W).
Events: the next bitmap sync (pending reaches the downtime threshold), link changes,
profile phases, a sequential writer covering its working set, the policy's timer, the
timeout, and for rate-sensitive policies a bound on how much the dirtying rates may drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dq_agent.engine import PAGE_SIZE
from dq_agent.sim.policies import Oracle, Policy, RateView
from dq_agent.sim.scenario import Scenario

# ram_save_iterate() returns to the migration loop at least every 50 ms (MAX_WAIT), so
# QEMU re-checks pending and may sync at most that often; on average it notices that
# pending fell below the threshold half such a chunk late.
MIN_SYNC_GAP_S = 0.050
CHECK_LAG_S = 0.025
# QEMU evaluates throttling only for sync periods longer than 1 s (migration_bitmap_sync).
PERIOD_MIN_S = 1.0
MAX_STEP_S = 5.0
# rate-sensitive policies: a random writer's rate may drift by ~5% within a chunk
RATE_DRIFT = 0.05
EPS = 1e-9
T = TypeVar("T")
MAX_RECORDS = 600
# Every loop is bounded: no sane scenario needs this many chunks (the v10 512 GB case
# takes under 1500); hitting it is a model bug, reported as such.
MAX_STEPS = 2_000_000


@dataclass
class SimOutcome:
    """Raw outcome of one simulated run (turned into a run-result document elsewhere)."""

    converged: bool
    total_time_s: float
    downtime_ms: float | None
    bytes_sent: int
    iterations: int
    retained: list[float]
    progress: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0


def _covered(dirtied: float, working_set: float) -> bool:
    """A sequential writer has dirtied its whole working set (up to float noise)."""
    return dirtied >= working_set * (1 - 1e-9)


def _thin(records: list[T], limit: int) -> list[T]:
    if len(records) <= limit:
        return records
    stride = math.ceil(len(records) / limit)
    kept = records[::stride]
    if kept[-1] is not records[-1]:
        kept.append(records[-1])
    return kept


def simulate(scenario: Scenario, policy: Policy) -> SimOutcome:
    if isinstance(policy, Oracle):
        return _oracle(scenario)
    return _PreCopy(scenario, policy).run()


def _oracle(sc: Scenario) -> SimOutcome:
    """Every page sent once at the link's rate; the guest is never slowed."""
    need = sc.ram_bytes
    t = 0.0
    edges = [a for a, _ in sc.link_changes] + [math.inf]
    for edge in edges:
        rate = sc.link_at(t)
        span = edge - t
        if rate > 0 and need <= rate * span:
            t += need / rate
            need = 0
            break
        need -= rate * span if rate > 0 else 0
        t = edge
    converged = need <= 0 and t <= sc.timeout_s
    total = t if converged else sc.timeout_s
    n = len(sc.vcpus)
    return SimOutcome(
        converged=converged,
        total_time_s=total,
        downtime_ms=0.0 if converged else None,
        bytes_sent=int(sc.ram_bytes if converged else sc.ram_bytes - need),
        iterations=1,
        retained=[1.0] * n,
        progress=[
            {
                "t": 0.0,
                "status": "active",
                "transferred_bytes": 0,
                "remaining_bytes": int(sc.ram_bytes),
                "iteration": 1,
            },
            {
                "t": total,
                "status": "completed" if converged else "cancelled",
                "transferred_bytes": int(sc.ram_bytes - max(need, 0)),
                "remaining_bytes": 0,
                "iteration": 1,
            },
        ],
    )


class _PreCopy:
    def __init__(self, sc: Scenario, policy: Policy) -> None:
        self.sc = sc
        self.policy = policy
        self.n = len(sc.vcpus)
        self.total_pages = sc.ram_bytes / PAGE_SIZE
        self.pending = self.total_pages  # the first pass sends everything
        self.t = 0.0
        self.sent = 0.0  # bytes
        self.syncs = 1  # ram_init_bitmaps() syncs once at setup
        self.period_t0 = 0.0
        self.period_b0 = 0.0
        self.period_dirty = 0.0
        self.next_sync_ok = MIN_SYNC_GAP_S
        self.dirtied = [0.0] * self.n
        self.work = [0.0] * self.n
        self.fr = [1.0] * self.n
        self.writes = [0.0] * self.n  # pages/s written at full speed
        self.ws = [1.0] * self.n  # working set, pages
        self.progress: list[dict[str, Any]] = []
        self.timeline: list[list[dict[str, Any]]] = []
        self.sync_cost_s = sc.bitmap_sync_ms_per_gib * sc.ram_bytes / 2**30 / 1000
        self.dl_s = sc.downtime_limit_ms / 1000
        change_times = {a for a, _ in sc.link_changes}
        for v in sc.vcpus:
            change_times.update(p.at_s for p in v.phases)
        self.change_times = sorted(change_times)
        self.steps = 0

    # --- rates -------------------------------------------------------------------------
    def _load_profiles(self) -> None:
        for i, v in enumerate(self.sc.vcpus):
            rate, share, ws = v.at(self.t)
            self.writes[i] = rate * share / PAGE_SIZE
            self.ws[i] = ws / PAGE_SIZE
            if self.dirtied[i] > self.ws[i]:
                self.dirtied[i] = self.ws[i]

    def _new_dirty_pps(self, i: int) -> float:
        w, ws, d = self.writes[i], self.ws[i], self.dirtied[i]
        if self.sc.vcpus[i].pattern == "sequential":
            return 0.0 if _covered(d, ws) else w
        return w * max(0.0, 1.0 - d / ws)

    # --- advancing ---------------------------------------------------------------------
    def _advance_guest(self, dt: float) -> None:
        for i in range(self.n):
            f = self.fr[i]
            self.work[i] += f * dt
            w = self.writes[i] * f * dt
            if w <= 0:
                continue
            ws = self.ws[i]
            if self.sc.vcpus[i].pattern == "sequential":
                d = self.dirtied[i] + w
                self.dirtied[i] = ws if _covered(d, ws) else d
            else:
                self.dirtied[i] = ws - (ws - self.dirtied[i]) * math.exp(-w / ws)

    def _advance(self, dt: float, bw: float) -> None:
        self._advance_guest(dt)
        pages = min(self.pending, bw * dt / PAGE_SIZE)
        self.pending -= pages
        self.sent += pages * PAGE_SIZE
        self.t += dt

    # --- syncs -------------------------------------------------------------------------
    def _sync(self, bw: float, periodic: bool) -> bool:
        """One bitmap sync; returns True when the migration can complete now."""
        if self.sync_cost_s > 0:  # the migration thread syncs; the link idles meanwhile
            self._advance_guest(self.sync_cost_s)
            self.t += self.sync_cost_s
        new = sum(self.dirtied)
        # pages still pending from this pass are already in the bitmap (independence)
        added = new * (1.0 - self.pending / self.total_pages)
        self.pending = min(self.total_pages, self.pending + added)
        self.period_dirty += added
        self.dirtied = [0.0] * self.n
        self.syncs += 1
        self.next_sync_ok = self.t + MIN_SYNC_GAP_S
        period = self.t - self.period_t0
        rate = None
        if period > PERIOD_MIN_S:
            rate = self.period_dirty / period
            self.policy.on_period(
                self.t, int(self.period_dirty * PAGE_SIZE), int(self.sent - self.period_b0)
            )
            self.period_t0, self.period_b0, self.period_dirty = self.t, self.sent, 0.0
        self._record(bw, rate)
        return (not periodic) and self.pending <= bw * self.dl_s / PAGE_SIZE

    def _record(self, bw: float, dirty_rate: float | None) -> None:
        remaining = int(self.pending * PAGE_SIZE)
        rec: dict[str, Any] = {
            "t": round(self.t, 6),
            "status": "active",
            "transferred_bytes": int(self.sent),
            "remaining_bytes": remaining,
            "mbps": bw * 8 / 1e6,
            "iteration": self.syncs,
            "expected_downtime_ms": remaining / bw * 1000 if bw > 0 else None,
            "throttle_pct": self.policy.throttle_pct(),
        }
        if dirty_rate is not None:
            rec["dirty_pages_rate"] = dirty_rate
        self.progress.append(rec)
        group = []
        for i, v in enumerate(self.sc.vcpus):
            rate, _, _ = v.at(self.t)
            group.append(
                {
                    "t": round(self.t, 6),
                    "vcpu": i,
                    "ops_per_s": v.ops_per_s * self.fr[i],
                    "mb_per_s": rate * self.fr[i] / 1e6,
                    "run_fraction": self.fr[i],
                }
            )
        self.timeline.append(group)

    # --- main loop ---------------------------------------------------------------------
    def _next_event(self, bw: float) -> tuple[float, bool]:
        """Time of the next event, and whether it is the next sync."""
        t = self.t
        thr = bw * self.dl_s / PAGE_SIZE
        if bw > 0:
            to_thr = max(0.0, self.pending - thr) * PAGE_SIZE / bw
            lag = min(CHECK_LAG_S, self.pending * PAGE_SIZE / bw - to_thr)
            t_sync = max(self.next_sync_ok, t + to_thr + max(0.0, lag))
        else:
            t_sync = math.inf
        cand = min(self.sc.timeout_s, t + MAX_STEP_S, self.policy.timer_due())
        for ct in self.change_times:
            if ct > t + EPS:
                cand = min(cand, ct)
                break
        sensitive = self.policy.rate_sensitive
        for i in range(self.n):
            w = self.writes[i] * self.fr[i]
            if w <= 0:
                continue
            ws, d = self.ws[i], self.dirtied[i]
            if self.sc.vcpus[i].pattern == "sequential":
                if not _covered(d, ws):
                    cand = min(cand, t + (ws - d) / w)
            elif sensitive:
                cand = min(cand, t + max(1e-3, RATE_DRIFT * ws / w))
        if t_sync <= cand:
            return t_sync, True
        return cand, False

    def run(self) -> SimOutcome:
        sc, policy = self.sc, self.policy
        policy.observe(0.0, 0)
        downtime_ms: float | None = None
        converged = False
        bw = sc.link_at(0.0)
        self._record(bw, None)
        while True:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise RuntimeError(f"dq-sim: {sc.name}: no progress after {MAX_STEPS} steps")
            bw = sc.link_at(self.t)
            self._load_profiles()
            view = RateView(
                t=self.t,
                throughput_bps=bw,
                new_dirty_pps=[self._new_dirty_pps(i) for i in range(self.n)],
                ring_pps=[min(self.writes[i], self.ws[i]) for i in range(self.n)],
            )
            self.fr = policy.fractions(view)
            t_next, is_sync = self._next_event(bw)
            if t_next > self.t:
                self._advance(t_next - self.t, bw)
            policy.observe(self.t, int(self.sent))
            if self.t >= sc.timeout_s - EPS:
                break
            if policy.timer_due() <= self.t + EPS and policy.on_timer(self.t, self.syncs):
                self._sync(bw, periodic=True)
                continue
            if is_sync and self._sync(bw, periodic=False):
                downtime_s = self.pending * PAGE_SIZE / bw if bw > 0 else 0.0
                downtime_ms = downtime_s * 1000
                self.sent += self.pending * PAGE_SIZE
                self.t += downtime_s
                converged = True
                break
        live_t = self.t - (downtime_ms or 0.0) / 1000
        status = "completed" if converged else "cancelled"
        self.progress.append(
            {
                "t": round(self.t, 6),
                "status": status,
                "transferred_bytes": int(self.sent),
                "remaining_bytes": 0 if converged else int(self.pending * PAGE_SIZE),
                "iteration": self.syncs,
                "throttle_pct": policy.throttle_pct(),
            }
        )
        return SimOutcome(
            converged=converged,
            total_time_s=self.t,
            downtime_ms=downtime_ms,
            bytes_sent=int(self.sent),
            iterations=self.syncs,
            retained=[w / live_t if live_t > 0 else 1.0 for w in self.work],
            progress=_thin(self.progress, MAX_RECORDS),
            timeline=[r for g in _thin(self.timeline, MAX_RECORDS) for r in g],
            steps=self.steps,
        )
