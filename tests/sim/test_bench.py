"""The benchmark script runs (its figures are reported, not asserted)."""

from __future__ import annotations

from dq_agent.sim import bench


def test_plan_benchmark_runs_on_a_small_fleet() -> None:
    med, p95 = bench.bench_plan(vms=3, vcpus=4, repeats=5)
    assert 0 < med <= p95
