"""The dirty-quota interval planner (docs/contracts.md §3): integers in, integers out.

The QEMU C implementation reproduces this function exactly; the JSON vectors in
`vectors/` prove it. Keep every operation integer and every tie-break explicit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PAGE_SIZE = 4096
DEFAULT_INTERVAL_S = 0.010
# Half the link: the guest may dirty at most half of what is sent, so the remaining dirty
# set shrinks by at least half the link rate per second (see docs/engine.md).
DEFAULT_CONVERGENCE_FACTOR = 0.5
POOL_CAP_BUDGETS = 4  # pool cap = 4 x budget
BURST_BUDGETS = 1  # burst = 1 x budget per vCPU per interval


def budget_pages(
    throughput_bps: float,
    interval_s: float = DEFAULT_INTERVAL_S,
    convergence_factor: float = DEFAULT_CONVERGENCE_FACTOR,
    page_size: int = PAGE_SIZE,
) -> int:
    """Pages the whole VM may dirty per interval: floor(B/s * s * factor / page)."""
    if throughput_bps <= 0 or interval_s <= 0 or convergence_factor <= 0:
        return 0
    return int(throughput_bps * interval_s * convergence_factor // page_size)


@dataclass(frozen=True, slots=True)
class QuotaParams:
    """Pool cap and per-interval burst limit, in pages."""

    pool_cap_pages: int
    burst_pages: int

    @classmethod
    def for_budget(cls, budget: int) -> QuotaParams:
        """The documented defaults: cap 4 x budget, burst 1 x budget."""
        return cls(POOL_CAP_BUDGETS * budget, BURST_BUDGETS * budget)


@dataclass(frozen=True, slots=True)
class IntervalPlan:
    """What one interval grants. `throttled[i]`: vCPU i sleeps for the rest of it."""

    shares: tuple[int, ...]
    draws: tuple[int, ...]
    grants: tuple[int, ...]
    throttled: tuple[bool, ...]
    pool_after: int


def split_shares(budget: int, weights: Sequence[int]) -> tuple[int, ...]:
    """floor(budget*w/W), remainder +1 to the largest (budget*w) mod W, ties to lower index."""
    if budget < 0:
        raise ValueError("budget must be >= 0")
    if not weights or min(weights) <= 0:
        raise ValueError("weights must be positive")
    n = len(weights)
    first = weights[0]
    if weights.count(first) == n:
        # Equal weights (the default): equal remainders, so the +1s go to the lowest indices.
        base, rem = divmod(budget, n)
        return tuple(base + 1 if i < rem else base for i in range(n))
    total = sum(weights)
    shares = [budget * w // total for w in weights]
    rem = budget - sum(shares)
    if rem:
        by_remainder = sorted(
            range(len(weights)), key=lambda i: (-(budget * weights[i] % total), i)
        )
        for i in by_remainder[:rem]:
            shares[i] += 1
    return tuple(shares)


def plan_interval(
    budget: int,
    weights: Sequence[int],
    demands: Sequence[int],
    pool: int,
    params: QuotaParams,
    order: Sequence[int] | None = None,
) -> IntervalPlan:
    """Plan one interval exactly per contracts §3; `order` is the FCFS order of pool draws."""
    n = len(weights)
    if len(demands) != n:
        raise ValueError("demands and weights differ in length")
    if (n and min(demands) < 0) or pool < 0:
        raise ValueError("demands and pool must be >= 0")
    if params.pool_cap_pages < 0 or params.burst_pages < 0:
        raise ValueError("pool cap and burst must be >= 0")
    if order is None:
        order = range(n)
    elif sorted(order) != list(range(n)):
        raise ValueError("order must be a permutation of vCPU indices")
    shares = split_shares(budget, weights)
    draws = [0] * n
    grants = [0] * n
    throttled = [False] * n
    pool_work = pool
    burst = params.burst_pages
    unused = 0
    for i in order:
        demand = demands[i]
        share = shares[i]
        if demand <= share:
            grants[i] = demand
            unused += share - demand
            continue
        draw = min(demand - share, pool_work, burst)
        pool_work -= draw
        draws[i] = draw
        grants[i] = share + draw
        throttled[i] = demand > share + draw
    return IntervalPlan(
        shares=shares,
        draws=tuple(draws),
        grants=tuple(grants),
        throttled=tuple(throttled),
        pool_after=min(params.pool_cap_pages, pool_work + unused),
    )
