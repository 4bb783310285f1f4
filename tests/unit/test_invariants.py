"""Hypothesis property tests for the four invariants of issue 2 (plus agreement with the
naive reference transcription of contracts §3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dq_agent.engine import QuotaParams, plan_interval

from .reference import reference_plan


@st.composite
def interval_inputs(draw: st.DrawFn) -> dict[str, object]:
    n = draw(st.integers(1, 12))
    weights = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n))
    demands = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    order = draw(st.permutations(list(range(n))))
    budget = draw(st.integers(0, 5000))
    pool = draw(st.integers(0, 20000))
    cap = draw(st.integers(0, 20000))
    burst = draw(st.integers(0, 5000))
    return {
        "budget": budget,
        "weights": weights,
        "demands": demands,
        "order": list(order),
        "pool": pool,
        "params": QuotaParams(cap, burst),
    }


def _plan(x: dict[str, object]):  # type: ignore[no-untyped-def]
    return plan_interval(
        x["budget"],
        x["weights"],
        x["demands"],
        x["pool"],
        x["params"],
        x["order"],  # type: ignore[arg-type]
    )


@settings(max_examples=400, deadline=None)
@given(interval_inputs())
def test_grants_never_exceed_budget_plus_pool(x: dict[str, object]) -> None:
    plan = _plan(x)
    assert sum(plan.grants) <= x["budget"] + x["pool"]  # type: ignore[operator]
    assert sum(plan.shares) == x["budget"]
    assert all(g <= d for g, d in zip(plan.grants, x["demands"], strict=True))  # type: ignore[call-overload]
    assert 0 <= plan.pool_after <= x["params"].pool_cap_pages  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None)
@given(interval_inputs())
def test_no_starvation_while_pool_has_quota(x: dict[str, object]) -> None:
    """A throttled vCPU either drew its full burst or found the pool empty when it drew."""
    plan = _plan(x)
    pool = x["pool"]
    burst = x["params"].burst_pages  # type: ignore[attr-defined]
    for i in x["order"]:  # type: ignore[attr-defined]
        if plan.throttled[i]:
            assert plan.draws[i] == burst or plan.draws[i] == pool
        pool -= plan.draws[i]  # type: ignore[operator]
    # and with a positive burst, a throttled vCPU got something whenever the pool had any
    if burst > 0:
        pool = x["pool"]
        for i in x["order"]:  # type: ignore[attr-defined]
            if x["demands"][i] > plan.shares[i] and pool > 0:  # type: ignore[index, operator]
                assert plan.draws[i] > 0
            pool -= plan.draws[i]  # type: ignore[operator]


@settings(max_examples=400, deadline=None)
@given(interval_inputs())
def test_idle_vcpu_never_throttled(x: dict[str, object]) -> None:
    plan = _plan(x)
    for d, t, g in zip(x["demands"], plan.throttled, plan.grants, strict=True):  # type: ignore[call-overload]
        if d == 0:
            assert not t and g == 0


@settings(max_examples=300, deadline=None)
@given(interval_inputs())
def test_deterministic_and_equal_to_reference(x: dict[str, object]) -> None:
    a, b = _plan(x), _plan(dict(x))
    assert a == b
    ref = reference_plan(
        x["budget"],
        x["weights"],
        x["demands"],
        x["order"],
        x["pool"],  # type: ignore[arg-type]
        x["params"].pool_cap_pages,
        x["params"].burst_pages,  # type: ignore[attr-defined]
    )
    assert list(a.shares) == ref["shares"]
    assert list(a.draws) == ref["draws"]
    assert list(a.grants) == ref["grants"]
    assert list(a.throttled) == ref["throttled"]
    assert a.pool_after == ref["pool_after"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 400), min_size=3, max_size=3), min_size=1, max_size=40),
    st.integers(0, 300),
)
def test_sequences_keep_pool_within_cap_and_grants_within_supply(
    demand_seq: list[list[int]], budget: int
) -> None:
    params = QuotaParams.for_budget(budget)
    pool = 0
    for demands in demand_seq:
        plan = plan_interval(budget, [1, 1, 1], demands, pool, params)
        assert sum(plan.grants) <= budget + pool
        assert max(plan.draws) <= params.burst_pages
        pool = plan.pool_after
        assert 0 <= pool <= params.pool_cap_pages
