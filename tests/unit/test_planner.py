"""The interval planner against hand-computed contract cases."""

from __future__ import annotations

import pytest

from dq_agent.engine import QuotaParams, budget_pages, plan_interval, split_shares


def test_contract_example_skewed_two_vcpu() -> None:
    plan = plan_interval(100, [1, 1], [300, 0], 0, QuotaParams(400, 100), [0, 1])
    assert plan.shares == (50, 50)
    assert plan.draws == (0, 0)
    assert plan.grants == (50, 0)
    assert plan.throttled == (True, False)
    assert plan.pool_after == 50


def test_largest_remainder_ties_go_to_lower_index() -> None:
    # 10 over weights 1,1,1: 3,3,3 and one left; all remainders equal -> index 0
    assert split_shares(10, [1, 1, 1]) == (4, 3, 3)
    # 10*3 mod 7 = 2, 10*2 mod 7 = 6 (x2): the two weight-2 vCPUs get the +1s
    assert split_shares(10, [3, 2, 2]) == (4, 3, 3)
    assert split_shares(7, [1, 1, 1, 1]) == (2, 2, 2, 1)


def test_pool_draws_first_come_first_served_with_burst() -> None:
    params = QuotaParams(pool_cap_pages=1000, burst_pages=30)
    plan = plan_interval(30, [1, 1, 1], [100, 100, 100], 50, params, [2, 0, 1])
    # vCPU 2 draws first (30 = burst), vCPU 0 gets the remaining 20, vCPU 1 nothing
    assert plan.draws == (20, 0, 30)
    assert plan.grants == (30, 10, 40)
    assert plan.pool_after == 0


def test_unused_quota_reaches_pool_only_afterwards_and_is_capped() -> None:
    params = QuotaParams(pool_cap_pages=120, burst_pages=100)
    # vCPU 0 is first and cannot use vCPU 1's unused share within the same interval
    plan = plan_interval(100, [1, 1], [100, 0], 0, params)
    assert plan.grants == (50, 0)
    assert plan.pool_after == 50
    plan = plan_interval(100, [1, 1], [0, 0], 100, params)
    assert plan.pool_after == 120


def test_budget_pages_floor_and_defaults() -> None:
    # 640 MB/s link, 10 ms, factor 0.5: 3.2 MB -> 781.25 pages -> 781
    assert budget_pages(640e6) == 781
    assert budget_pages(640e6, 0.010, 1.0) == 1562
    assert budget_pages(0.0) == 0
    assert budget_pages(-5.0) == 0
    assert budget_pages(4095 / 0.010 / 0.5) == 0
    assert QuotaParams.for_budget(781) == QuotaParams(3124, 781)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weights": [1, 0], "demands": [1, 1]}, "weights"),
        ({"weights": [1], "demands": [1, 1]}, "length"),
        ({"weights": [1, 1], "demands": [-1, 1]}, ">= 0"),
        ({"weights": [1, 1], "demands": [1, 1], "order": [0, 0]}, "permutation"),
    ],
)
def test_bad_inputs_are_rejected(kwargs: dict[str, list[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_interval(
            10, kwargs["weights"], kwargs["demands"], 0, QuotaParams(40, 10), kwargs.get("order")
        )
