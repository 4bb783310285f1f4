"""Push finished-run summaries to the Pushgateway (job `dqlab_runs`).

One group per (scenario, policy, bandwidth). Each push replaces the group with:
- the last run's numbers (gauges `dq_run_last_*`), and
- cumulative views rebuilt from the append-only history: run counters and histograms of
  total time, downtime and throughput retained. Rebuilding from history (instead of
  incrementing) keeps them monotonic and exact even if a push was lost.
Labels: scenario, policy, bandwidth (grouping key) and vcpu where per vCPU. Never a run id.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

from dq_agent.nightly.history import HistoryRecord

JOB = "dqlab_runs"
TOTAL_TIME_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
DOWNTIME_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
RETAINED_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

# The names this module owns (dashboards and docs/monitoring.md use exactly these).
METRIC_NAMES = (
    "dq_run_last_converged",
    "dq_run_last_total_time_seconds",
    "dq_run_last_downtime_seconds",
    "dq_run_last_sent_bytes",
    "dq_run_last_throughput_retained_ratio",
    "dq_run_last_timestamp_seconds",
    "dq_runs_total",
    "dq_runs_converged_total",
    "dq_run_total_time_seconds",
    "dq_run_downtime_seconds",
    "dq_run_throughput_retained_ratio",
)


def registry_for(
    last: HistoryRecord,
    last_vcpus: Sequence[float],
    group_history: Sequence[HistoryRecord],
    pushed_at: float,
) -> CollectorRegistry:
    reg = CollectorRegistry()
    m = last.metrics
    Gauge("dq_run_last_converged", "1 if the last run converged", registry=reg).set(m["converged"])
    Gauge("dq_run_last_total_time_seconds", "Last run: migration total time", registry=reg).set(
        m["total_time_s"]
    )
    Gauge(
        "dq_run_last_downtime_seconds", "Last run: downtime (NaN if not converged)", registry=reg
    ).set(m.get("downtime_ms", float("nan")) / 1000.0)
    Gauge("dq_run_last_sent_bytes", "Last run: bytes sent", registry=reg).set(m["bytes_sent"])
    ret = Gauge(
        "dq_run_last_throughput_retained_ratio",
        "Last run: guest throughput retained during migration per vCPU (0-1)",
        ["vcpu"],
        registry=reg,
    )
    for vcpu, value in enumerate(last_vcpus):
        ret.labels(vcpu=str(vcpu)).set(value)
    Gauge("dq_run_last_timestamp_seconds", "When the last run was pushed", registry=reg).set(
        pushed_at
    )

    runs = Counter("dq_runs", "Runs recorded in the history", registry=reg)
    conv = Counter("dq_runs_converged", "Converged runs recorded in the history", registry=reg)
    tt = Histogram(
        "dq_run_total_time_seconds",
        "Migration total time over the history",
        buckets=TOTAL_TIME_BUCKETS,
        registry=reg,
    )
    dt = Histogram(
        "dq_run_downtime_seconds",
        "Downtime of converged runs over the history",
        buckets=DOWNTIME_BUCKETS,
        registry=reg,
    )
    tr = Histogram(
        "dq_run_throughput_retained_ratio",
        "Mean per-vCPU throughput retained over the history",
        buckets=RETAINED_BUCKETS,
        registry=reg,
    )
    for rec in group_history:
        runs.inc()
        if rec.metrics.get("converged"):
            conv.inc()
        tt.observe(rec.metrics["total_time_s"])
        if "downtime_ms" in rec.metrics:
            dt.observe(rec.metrics["downtime_ms"] / 1000.0)
        if "throughput_retained" in rec.metrics:
            tr.observe(rec.metrics["throughput_retained"])
    return reg


def push_run(
    gateway: str,
    last: HistoryRecord,
    last_vcpus: Sequence[float],
    history: Sequence[HistoryRecord],
    pushed_at: float,
    timeout: float = 5.0,
) -> None:
    """PUT the group for `last`'s (scenario, policy, bandwidth). `gateway` is host:port."""
    group = [
        r
        for r in history
        if (r.scenario, r.policy, r.bandwidth, r.kind)
        == (last.scenario, last.policy, last.bandwidth, "real")
    ]
    reg = registry_for(last, last_vcpus, group, pushed_at)
    push_to_gateway(
        gateway,
        job=JOB,
        registry=reg,
        grouping_key={
            "scenario": last.scenario,
            "policy": last.policy,
            "bandwidth": last.bandwidth,
        },
        timeout=timeout,
    )


GUEST_JOB = "dqlab_guest"


def push_guest_throughput(
    gateway: str, domain: str, host: str, bytes_per_second: Sequence[float], timeout: float = 2.0
) -> None:
    """Live guest workload throughput per vCPU (the runner calls this while it reads dq-stress).

    The agent cannot see inside the guest; the runner can, so it pushes what it reads.
    """
    reg = CollectorRegistry()
    g = Gauge(
        "dq_guest_workload_bytes_per_second",
        "Guest workload throughput per vCPU",
        ["vcpu"],
        registry=reg,
    )
    for vcpu, value in enumerate(bytes_per_second):
        g.labels(vcpu=str(vcpu)).set(value)
    push_to_gateway(
        gateway,
        job=GUEST_JOB,
        registry=reg,
        grouping_key={"domain": domain, "host": host},
        timeout=timeout,
    )


def clear_guest_throughput(gateway: str, domain: str, host: str, timeout: float = 2.0) -> None:
    """Drop the group when the run ends so a finished guest does not look alive."""
    from prometheus_client import delete_from_gateway

    delete_from_gateway(
        gateway, job=GUEST_JOB, grouping_key={"domain": domain, "host": host}, timeout=timeout
    )
