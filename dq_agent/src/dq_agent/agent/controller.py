"""The control loop: one pass over every outgoing migration per tick.

Per tick and migration: read jobStats, feed the engine's throughput estimator; per link:
add up the measured throughput, split it among that link's migrations by domain weight
(engine `split_throughput`), turn each share into a whole-VM budget (engine
`budget_pages`), and apply it through the domain's backend, which renews QEMU's deadline.
All quota rules live in `dq_agent.engine`; this module only moves numbers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from dq_agent.agent import backends, log
from dq_agent.agent.backends import Availability, Backend, QuotaPlan, Reading
from dq_agent.agent.config import Config
from dq_agent.agent.declared import throttle_allowed
from dq_agent.agent.hypervisor import DomainGone, Event, Hypervisor, HypervisorError
from dq_agent.agent.jobstats import JobStats
from dq_agent.agent.qmp import QmpError
from dq_agent.engine import (
    QuotaParams,
    ThroughputEstimator,
    TriggerState,
    budget_pages,
    split_throughput,
)

# A QMP round trip through libvirt costs ~0.1 ms CPU and up to ~10 ms wall on a busy TCG
# host, so the loop only talks to QEMU when it matters: a new plan (budget moved by more
# than RESEND_CHANGE), a renewal due (a third of the deadline gone), or a metrics read
# (per-vCPU counters at most every READ_PERIOD_S; Prometheus scrapes far less often).
RESEND_CHANGE = 0.05
RENEW_FRACTION = 1 / 3
READ_PERIOD_S = 1.0


@dataclass
class Migration:
    """What the agent knows about one outgoing migration."""

    domain: str
    backend: Backend
    probes: dict[str, Availability]
    vcpus: int
    link: str
    weight: int
    vcpu_weights: tuple[int, ...]
    enabled: bool
    estimator: ThroughputEstimator
    trigger: TriggerState
    stats: JobStats = field(default_factory=JobStats)
    declared_policy: str | None = None  # from the domain's metadata (contracts.md §5)
    throughput_bps: float = 0.0
    plan: QuotaPlan | None = None
    reading: Reading | None = None
    enforcing: bool = False
    last_iteration: int = 0
    last_processed: int = 0
    last_apply_t: float = float("-inf")
    exhausted_at_sync: int = 0
    last_read_t: float = float("-inf")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable copy for one scrape."""

    migrations: tuple[Migration, ...]
    errors: dict[str, int]
    loop_count: int
    loop_seconds_sum: float
    last_loop_seconds: float
    connected: bool
    configured_backend: str


def _exhausted(reading: Reading | None) -> int:
    if reading is None:
        return 0
    return sum(v.exhausted_count or 0 for v in reading.vcpus)


class Controller:
    def __init__(
        self, cfg: Config, hv: Hypervisor, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cfg = cfg
        self.hv = hv
        self.clock = clock
        self._lock = threading.Lock()
        self._migrations: dict[str, Migration] = {}
        self.errors: Counter[str] = Counter()
        self.loop_count = 0
        self.loop_seconds_sum = 0.0
        self.last_loop_seconds = 0.0
        self.connected = False
        # (domain, declared policy) pairs already logged as observe-only: log why once.
        self._declared_logged: set[tuple[str, str]] = set()

    # -- membership -------------------------------------------------------------------
    @property
    def active(self) -> list[str]:
        with self._lock:
            return list(self._migrations)

    def error(self, kind: str, **fields: object) -> None:
        with self._lock:
            self.errors[kind] += 1
        log.warning("error", kind=kind, **fields)

    def adopt(self, domain: str, reason: str) -> None:
        """Start controlling an outgoing migration (from an event or the start-up scan)."""
        if domain in self._migrations:
            return
        policy = self.cfg.policy_for(domain)
        try:
            stats = self.hv.job_stats(domain)
            if not stats.outgoing_migration:
                return
            vcpus = self.hv.vcpu_count(domain)
            qmp = self.hv.qmp(domain)
            declared = self.hv.declared_policy(domain)
            # A domain declaring another policy (none, auto-converge) is only observed:
            # throttling it would silently turn its run into a dirty-quota run.
            enabled = policy.enabled and throttle_allowed(declared)
            if enabled:
                backend, probes = backends.choose(self.cfg.backend, qmp, self.cfg.interval_ms)
            else:
                backend, probes = backends.make("observe"), {}
        except DomainGone:
            return
        except (HypervisorError, QmpError) as e:
            self.error("adopt", domain=domain, detail=e)
            return
        weights = policy.vcpu_weights if len(policy.vcpu_weights) == vcpus else (1,) * vcpus
        if policy.vcpu_weights and len(policy.vcpu_weights) != vcpus:
            log.warning(
                "vcpu_weights length differs from vCPU count; using equal weights",
                domain=domain,
                vcpus=vcpus,
            )
        m = Migration(
            domain=domain,
            backend=backend,
            probes=probes,
            vcpus=vcpus,
            link=policy.link,
            weight=policy.weight,
            vcpu_weights=weights,
            enabled=enabled,
            estimator=ThroughputEstimator(self.cfg.window),
            trigger=TriggerState.initial(self.cfg.start_immediately),
            stats=stats,
            declared_policy=declared,
        )
        if declared is not None and not throttle_allowed(declared):
            key = (domain, declared)
            if key not in self._declared_logged:
                self._declared_logged.add(key)
                log.info(
                    "observing only: domain declares another migration policy",
                    domain=domain,
                    declared_policy=declared,
                )
        with self._lock:
            self._migrations[domain] = m
        why = "; ".join(f"{k}: {v.reason}" for k, v in probes.items() if not v.available)
        log.info(
            "migration adopted",
            domain=domain,
            reason=reason,
            backend=backend.name,
            vcpus=vcpus,
            link=m.link,
            opted_out=not policy.enabled,
            declared_policy=declared or "",
            unavailable=why,
        )

    def finish(self, domain: str, why: str) -> None:
        """Stop controlling; release every throttle this agent set on the domain."""
        with self._lock:
            m = self._migrations.pop(domain, None)
        if m is None:
            return
        self._release(m)
        log.info(
            "migration finished",
            domain=domain,
            why=why,
            iterations=m.stats.memory_iteration,
            transferred_bytes=m.stats.data_processed,
        )

    def _release(self, m: Migration) -> None:
        if not m.enforcing:
            return
        try:
            m.backend.release(self.hv.qmp(m.domain))
        except DomainGone:
            pass  # gone with its QEMU: nothing left to release
        except (HypervisorError, QmpError) as e:
            # QEMU ends throttling itself at migration end and at the deadline.
            self.error("release", domain=m.domain, detail=e)
        m.enforcing = False

    def release_all(self, why: str) -> None:
        for domain in self.active:
            self.finish(domain, why)

    def handle(self, ev: Event) -> None:
        if ev.kind == "migrating":
            self.adopt(ev.domain, ev.detail)
        elif ev.kind == "ended":
            self.finish(ev.domain, ev.detail)
        elif ev.kind == "check" and ev.domain in self._migrations:
            self._refresh(self._migrations[ev.domain], self.clock())

    # -- one tick ---------------------------------------------------------------------
    def _refresh(self, m: Migration, now: float) -> bool:
        """Read jobStats; False (and finish) when the migration is over."""
        try:
            stats = self.hv.job_stats(m.domain)
        except DomainGone:
            self.finish(m.domain, "domain-gone")
            return False
        except HypervisorError as e:
            self.error("jobstats", domain=m.domain, detail=e)
            return True
        if not stats.outgoing_migration:
            self.finish(m.domain, "job-ended")
            return False
        synced = stats.memory_iteration > m.last_iteration > 0
        # start_immediately: throttle from the first tick until the migration ends (as
        # QEMU's auto-converge never backs off mid-migration). Otherwise a bitmap sync
        # gives the engine's start/stop evidence one period.
        if synced and not self.cfg.start_immediately:
            sent = max(stats.data_processed - m.last_processed, 0)
            dirtied = stats.dirty_rate_bps * self.cfg.tick_ms // 1000
            exhausted = _exhausted(m.reading)
            if m.enforcing and exhausted > m.exhausted_at_sync:
                # Under our own throttle QEMU reports what the quota let through, not what
                # the guest wanted; vCPUs running out of quota mean demand is still high.
                dirtied = sent
            m.exhausted_at_sync = exhausted
            m.trigger = m.trigger.on_sync(dirtied, sent)
        if stats.memory_iteration != m.last_iteration:
            m.last_iteration = stats.memory_iteration
        m.last_processed = stats.data_processed
        m.estimator = m.estimator.push(now, stats.data_processed)
        m.throughput_bps = m.estimator.bytes_per_s or float(stats.memory_bps)
        m.stats = stats
        return True

    def _plan(self, m: Migration, share_bps: float) -> QuotaPlan:
        interval_s = self.cfg.interval_ms / 1000
        budget = budget_pages(share_bps, interval_s, self.cfg.convergence_factor)
        params = QuotaParams.for_budget(budget)
        return QuotaPlan(
            budget_pages=budget,
            interval_ms=self.cfg.interval_ms,
            deadline_ms=self.cfg.deadline_ms,
            pool_cap_pages=self.cfg.pool_cap_budgets * budget,
            burst_pages=params.burst_pages,
            vcpu_weights=m.vcpu_weights,
        )

    def _apply_due(self, m: Migration, plan: QuotaPlan, now: float) -> bool:
        if not m.enforcing or m.plan is None:
            return True
        if now - m.last_apply_t >= plan.deadline_ms / 1000 * RENEW_FRACTION:
            return True
        old = m.plan.budget_pages
        return abs(plan.budget_pages - old) > RESEND_CHANGE * max(old, 1) or (
            plan.vcpu_weights != m.plan.vcpu_weights
        )

    def _enforce(self, m: Migration, plan: QuotaPlan, now: float) -> None:
        qmp = self.hv.qmp(m.domain)
        want = m.enabled and m.trigger.active and plan.budget_pages > 0
        try:
            read_due = now - m.last_read_t >= READ_PERIOD_S
            if want and self._apply_due(m, plan, now):
                m.backend.apply(qmp, plan)
                m.enforcing = m.backend.name != "observe"
                m.plan = plan
                m.last_apply_t = now
                read_due = read_due or m.reading is None
            elif not want and m.enforcing:
                self._release(m)
                read_due = True
            if read_due:
                m.reading = m.backend.read(qmp)
                m.last_read_t = now
        except DomainGone:
            self.finish(m.domain, "domain-gone")
        except QmpError as e:
            self.error("qmp", domain=m.domain, command=e.command, detail=e.desc)

    def _guarded(self, m: Migration, step: Callable[[], object]) -> bool:
        """Run one migration's step; a bug must not stop control of the others."""
        try:
            return bool(step())
        except Exception as e:
            self.error("internal", domain=m.domain, detail=repr(e)[:300])
            return False

    def tick(self) -> None:
        start = time.perf_counter()
        now = self.clock()
        with self._lock:
            current = list(self._migrations.values())
        live = [m for m in current if self._guarded(m, partial(self._refresh, m, now))]
        by_link: dict[str, list[Migration]] = {}
        for m in live:
            by_link.setdefault(m.link, []).append(m)
        for group in by_link.values():
            # One link, one budget: what all its migrations measure, split by weight.
            total = sum(m.throughput_bps for m in group)
            shares = split_throughput(total, [m.weight for m in group])
            for m, share in zip(group, shares, strict=True):
                self._guarded(m, partial(self._enforce, m, self._plan(m, share), now))
        took = time.perf_counter() - start
        with self._lock:
            self.loop_count += 1
            self.loop_seconds_sum += took
            self.last_loop_seconds = took

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                migrations=tuple(self._migrations.values()),
                errors=dict(self.errors),
                loop_count=self.loop_count,
                loop_seconds_sum=self.loop_seconds_sum,
                last_loop_seconds=self.last_loop_seconds,
                connected=self.connected,
                configured_backend=self.cfg.backend,
            )
