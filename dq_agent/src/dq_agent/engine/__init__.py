"""Pure dirty-quota policy engine: numbers in, numbers out; no I/O, no clocks.

The agent, the simulator and the shared test vectors all use this code unchanged.
"""

from dq_agent.engine.link_share import VmInterval, plan_shared_link, split_throughput
from dq_agent.engine.planner import (
    DEFAULT_CONVERGENCE_FACTOR,
    DEFAULT_INTERVAL_S,
    PAGE_SIZE,
    IntervalPlan,
    QuotaParams,
    budget_pages,
    plan_interval,
    split_shares,
)
from dq_agent.engine.throughput import ByteSample, ThroughputEstimator, estimate_throughput
from dq_agent.engine.trigger import TriggerState, is_high

__all__ = [
    "DEFAULT_CONVERGENCE_FACTOR",
    "DEFAULT_INTERVAL_S",
    "PAGE_SIZE",
    "ByteSample",
    "IntervalPlan",
    "QuotaParams",
    "ThroughputEstimator",
    "TriggerState",
    "VmInterval",
    "budget_pages",
    "estimate_throughput",
    "is_high",
    "plan_interval",
    "plan_shared_link",
    "split_shares",
    "split_throughput",
]
