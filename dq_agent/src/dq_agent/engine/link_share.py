"""Dividing one link's measured throughput among several VMs migrating over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dq_agent.engine.planner import (
    DEFAULT_CONVERGENCE_FACTOR,
    DEFAULT_INTERVAL_S,
    IntervalPlan,
    QuotaParams,
    budget_pages,
    plan_interval,
)


def split_throughput(
    total_bps: float, weights: Sequence[int] | None = None, n: int = 0
) -> tuple[float, ...]:
    """Each VM's share of `total_bps`, proportional to positive integer weights.

    With no weights, `n` VMs share equally (the default the issue asks for).
    """
    if weights is None:
        if n < 1:
            raise ValueError("need weights or n >= 1")
        weights = [1] * n
    if not weights or any(w <= 0 for w in weights):
        raise ValueError("weights must be positive")
    total_w = sum(weights)
    rate = max(total_bps, 0.0)
    return tuple(rate * w / total_w for w in weights)


@dataclass(frozen=True, slots=True)
class VmInterval:
    """One VM's inputs to an interval: per-vCPU weights and demands, pool before it."""

    weights: tuple[int, ...]
    demands: tuple[int, ...]
    pool: int = 0


def plan_shared_link(
    throughput_bps: float,
    vms: Sequence[VmInterval],
    vm_weights: Sequence[int] | None = None,
    interval_s: float = DEFAULT_INTERVAL_S,
    convergence_factor: float = DEFAULT_CONVERGENCE_FACTOR,
) -> tuple[IntervalPlan, ...]:
    """One interval for every VM on the link: split the throughput, then plan each VM.

    Each VM's pool cap and burst follow the documented defaults for its own budget.
    """
    shares = split_throughput(throughput_bps, vm_weights, n=len(vms))
    plans = []
    for vm, vm_bps in zip(vms, shares, strict=True):
        budget = budget_pages(vm_bps, interval_s, convergence_factor)
        plans.append(
            plan_interval(budget, vm.weights, vm.demands, vm.pool, QuotaParams.for_budget(budget))
        )
    return tuple(plans)
