"""Prometheus exposition: a custom collector that builds every family on scrape.

One prefix (`dq_`), base units, counters end in `_total`. Identity labels are only
`domain`, `vcpu` and `host`; a few families add one bounded enum label (`backend`,
`kind`, `policy`; the policy family also `declared_policy`). Never a run id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from dq_agent.agent import backends
from dq_agent.agent.controller import Migration, Snapshot
from dq_agent.agent.declared import metric_label, throttle_allowed

# Every family this collector can emit: name -> help. Tests assert each one shows up.
FAMILIES: dict[str, str] = {
    "dq_agent_up": "1 while the agent runs",
    "dq_agent_libvirt_connected": "1 while the libvirt connection is open",
    "dq_agent_control_loop_duration_seconds": "Time one control-loop pass took",
    "dq_agent_control_loop_last_duration_seconds": "Time the most recent control-loop pass took",
    "dq_agent_errors": "Errors by kind since agent start",
    "dq_agent_migrations": "Outgoing migrations the agent is controlling",
    "dq_agent_backend_info": "Backend the configuration asks for",
    "dq_backend_available": "1 if the backend can work on this domain (probed at adoption)",
    "dq_migration_transferred_bytes": "Bytes sent so far (jobStats data_processed)",
    "dq_migration_remaining_bytes": "Bytes still to send (jobStats data_remaining)",
    "dq_migration_total_bytes": "Total bytes of the migration (jobStats data_total)",
    "dq_migration_dirty_rate_bytes_per_second": "Guest dirty rate reported by QEMU",
    "dq_migration_throughput_bytes_per_second": "Throughput measured by the agent over its window",
    "dq_migration_iteration": "Pre-copy iteration (bitmap sync count)",
    "dq_migration_expected_downtime_seconds": "Downtime QEMU expects at switch-over",
    "dq_migration_elapsed_seconds": "Time since the migration started",
    "dq_migration_auto_converge_throttle_ratio": "QEMU auto-converge CPU throttle, 0..1",
    "dq_migration_budget_pages": "Whole-VM dirty budget per quota interval the agent set",
    "dq_migration_quota_interval_seconds": "Length of one quota interval",
    "dq_migration_pool_pages": "Unused quota in the common pool (dirty-quota backend)",
    "dq_migration_throttle_enabled": "1 while the agent's throttle is in force on the domain",
    "dq_migration_policy": "Policy in use for the migration",
    "dq_vcpu_dirtied_pages": "Pages the vCPU dirtied (cumulative since QEMU start)",
    "dq_vcpu_quota_pages": "The vCPU's quota for the current interval",
    "dq_vcpu_pool_drawn_pages": "Pages the vCPU drew from the common pool",
    "dq_vcpu_quota_exhausted": "Times the vCPU used up its quota and had to sleep",
    "dq_vcpu_throttle_sleep_seconds": "Time the vCPU slept because of its quota",
    "dq_vcpu_dirty_rate_bytes_per_second": "The vCPU's current dirty rate (dirty-limit backend)",
}
# Names as exposed (counters gain _total, info gains _info).
COUNTERS = {
    "dq_agent_errors",
    "dq_vcpu_dirtied_pages",
    "dq_vcpu_pool_drawn_pages",
    "dq_vcpu_quota_exhausted",
    "dq_vcpu_throttle_sleep_seconds",
}
INFOS = {"dq_migration_policy"}
ERROR_KINDS = ("adopt", "jobstats", "qmp", "release", "libvirt", "internal")


def _policy_label(m: Migration) -> str:
    """Backend in use; `declared-other-policy` when the domain's declaration rules it out."""
    if m.enabled:
        return m.backend.name
    if not throttle_allowed(m.declared_policy):
        return "declared-other-policy"
    return "opted-out"


def exposed_name(family: str) -> str:
    if family in COUNTERS:
        return family + "_total"
    if family in INFOS:
        return family + "_info"
    if family == "dq_agent_control_loop_duration_seconds":
        return family + "_count"
    return family


class AgentCollector(Collector):
    def __init__(self, snapshot: Callable[[], Snapshot], host: str) -> None:
        self._snapshot = snapshot
        self.host = host

    def describe(self) -> Iterator[Metric]:
        return iter(())  # names vary with state; registering must not call collect()

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot()
        h = self.host
        F = FAMILIES

        def gauge(name: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, F[name], labels=labels)

        def counter(name: str, labels: list[str]) -> CounterMetricFamily:
            return CounterMetricFamily(name, F[name], labels=labels)

        up = gauge("dq_agent_up", ["host"])
        up.add_metric([h], 1)
        yield up
        conn = gauge("dq_agent_libvirt_connected", ["host"])
        conn.add_metric([h], 1 if s.connected else 0)
        yield conn
        loop = SummaryMetricFamily(
            "dq_agent_control_loop_duration_seconds",
            F["dq_agent_control_loop_duration_seconds"],
            labels=["host"],
        )
        loop.add_metric([h], s.loop_count, s.loop_seconds_sum)
        yield loop
        last = gauge("dq_agent_control_loop_last_duration_seconds", ["host"])
        last.add_metric([h], s.last_loop_seconds)
        yield last
        errs = counter("dq_agent_errors", ["host", "kind"])
        for kind in sorted(set(ERROR_KINDS) | set(s.errors)):
            errs.add_metric([h, kind], s.errors.get(kind, 0))
        yield errs
        n = gauge("dq_agent_migrations", ["host"])
        n.add_metric([h], len(s.migrations))
        yield n
        info = InfoMetricFamily("dq_agent_backend", F["dq_agent_backend_info"], labels=["host"])
        info.add_metric([h], {"backend": s.configured_backend})
        yield info

        avail = gauge("dq_backend_available", ["domain", "host", "backend"])
        per_mig: dict[str, GaugeMetricFamily] = {
            name: gauge(name, ["domain", "host"])
            for name in F
            if name.startswith("dq_migration_") and name != "dq_migration_policy"
        }
        policy = InfoMetricFamily(
            "dq_migration_policy", F["dq_migration_policy"], labels=["domain", "host"]
        )
        vc_labels = ["domain", "vcpu", "host"]
        dirtied = counter("dq_vcpu_dirtied_pages", vc_labels)
        quota = gauge("dq_vcpu_quota_pages", vc_labels)
        drawn = counter("dq_vcpu_pool_drawn_pages", vc_labels)
        exhausted = counter("dq_vcpu_quota_exhausted", vc_labels)
        slept = counter("dq_vcpu_throttle_sleep_seconds", vc_labels)
        vrate = gauge("dq_vcpu_dirty_rate_bytes_per_second", vc_labels)

        for m in s.migrations:
            d = [m.domain, h]
            for name in backends.NAMES:
                a = m.probes.get(name)
                if a is not None:
                    avail.add_metric([m.domain, h, name], 1 if a.available else 0)
            st = m.stats
            plan = m.plan
            values = {
                "dq_migration_transferred_bytes": st.data_processed,
                "dq_migration_remaining_bytes": st.data_remaining,
                "dq_migration_total_bytes": st.data_total,
                "dq_migration_dirty_rate_bytes_per_second": st.dirty_rate_bps,
                "dq_migration_throughput_bytes_per_second": m.throughput_bps,
                "dq_migration_iteration": st.memory_iteration,
                "dq_migration_expected_downtime_seconds": st.expected_downtime_ms / 1000,
                "dq_migration_elapsed_seconds": st.time_elapsed_ms / 1000,
                "dq_migration_auto_converge_throttle_ratio": st.auto_converge_throttle / 100,
                "dq_migration_budget_pages": plan.budget_pages if plan else 0,
                "dq_migration_quota_interval_seconds": (plan.interval_ms if plan else 0) / 1000,
                "dq_migration_pool_pages": (m.reading.pool_pages or 0) if m.reading else 0,
                "dq_migration_throttle_enabled": 1 if m.enforcing else 0,
            }
            for name, v in values.items():
                per_mig[name].add_metric(d, v)
            policy.add_metric(
                d,
                {
                    "backend": m.backend.name,
                    "policy": _policy_label(m),
                    "declared_policy": metric_label(m.declared_policy),
                },
            )
            for vc in m.reading.vcpus if m.reading else ():
                lv = [m.domain, str(vc.cpu_index), h]
                quota.add_metric(lv, vc.quota_pages)
                if vc.dirty_pages is not None:
                    dirtied.add_metric(lv, vc.dirty_pages)
                if vc.pool_drawn_pages is not None:
                    drawn.add_metric(lv, vc.pool_drawn_pages)
                if vc.exhausted_count is not None:
                    exhausted.add_metric(lv, vc.exhausted_count)
                if vc.sleep_ns is not None:
                    slept.add_metric(lv, vc.sleep_ns / 1e9)
                if vc.dirty_rate_bps is not None:
                    vrate.add_metric(lv, vc.dirty_rate_bps)
        yield avail
        yield from per_mig.values()
        yield policy
        yield from (dirtied, quota, drawn, exhausted, slept, vrate)
