"""Run summary: convergence, times, per-vCPU throughput retained and runtime share."""

from __future__ import annotations

from statistics import fmean
from typing import Any

from dq_agent.harness.guest import Sample


def vcpu_summary(
    samples: list[Sample],
    nvcpus: int,
    before: tuple[float, float],
    during: tuple[float, float],
    throttled_s: list[float],
) -> list[dict[str, Any]]:
    """throughput_retained = mean ops/s reported during the migration / mean before it.
    runtime_pct = share of the migration's wall time the vCPU was allowed to run
    (minus throttle sleep, from cpu-throttle-percentage or dirty-quota sleep-ns)."""
    out = []
    span = max(during[1] - during[0], 1e-9)
    for v in range(nvcpus):
        b = [s.ops_per_s for s in samples if s.vcpu == v and before[0] < s.t_host <= before[1]]
        d = [s.ops_per_s for s in samples if s.vcpu == v and during[0] < s.t_host <= during[1]]
        retained = round(fmean(d) / fmean(b), 4) if b and d and fmean(b) > 0 else None
        runtime = 100.0 * max(0.0, span - throttled_s[v]) / span
        out.append(
            {
                "vcpu": v,
                "throughput_retained": retained,
                "runtime_pct": round(min(100.0, runtime), 2),
                "ops_per_s_before": round(fmean(b), 1) if b else None,
                "ops_per_s_during": round(fmean(d), 1) if d else None,
            }
        )
    return out


def throttled_seconds(progress: list[dict[str, Any]], nvcpus: int) -> list[float]:
    """Time each vCPU spent throttled during the migration, from the poll records."""
    out = [0.0] * nvcpus
    prev: dict[str, Any] | None = None
    for rec in progress:
        if prev is not None:
            dt = rec["t"] - prev["t"]
            pct = float(prev.get("throttle_pct") or 0)
            for v in range(nvcpus):
                out[v] += dt * pct / 100.0
        prev = rec
    quota = [r["quota"] for r in progress if "quota" in r and r["quota"].get("vcpus")]
    if len(quota) >= 2:
        first = {v["vcpu"]: v.get("sleep_ns") or 0 for v in quota[0]["vcpus"]}
        for v in quota[-1]["vcpus"]:
            i = v["vcpu"]
            if isinstance(i, int) and 0 <= i < nvcpus:
                out[i] += ((v.get("sleep_ns") or 0) - first.get(i, 0)) / 1e9
    return out
