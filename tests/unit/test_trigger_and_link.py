"""Start/stop evidence (2 syncs in a row) and link sharing among VMs."""

from __future__ import annotations

import pytest

from dq_agent.engine import (
    TriggerState,
    VmInterval,
    budget_pages,
    is_high,
    plan_shared_link,
    split_throughput,
)


def test_is_high_is_strictly_more_than_half() -> None:
    assert not is_high(50, 100)
    assert is_high(51, 100)
    assert not is_high(0, 0)


def test_starts_after_two_high_syncs_in_a_row() -> None:
    s = TriggerState.initial()
    s = s.on_sync(90, 100)
    assert not s.active
    s = s.on_sync(10, 100)  # streak broken
    s = s.on_sync(90, 100)
    assert not s.active
    s = s.on_sync(90, 100)
    assert s.active


def test_stops_after_two_low_syncs_in_a_row() -> None:
    s = TriggerState(active=True)
    s = s.on_sync(10, 100)
    assert s.active
    s = s.on_sync(90, 100)  # high again resets the stop streak
    s = s.on_sync(10, 100)
    assert s.active
    s = s.on_sync(10, 100)
    assert not s.active


def test_start_immediately() -> None:
    assert TriggerState.initial(start_immediately=True).active
    assert not TriggerState.initial().active


def test_split_throughput_equal_by_default_and_weighted() -> None:
    assert split_throughput(300.0, n=3) == (100.0, 100.0, 100.0)
    assert split_throughput(300.0, [2, 1]) == (200.0, 100.0)
    assert split_throughput(-1.0, n=2) == (0.0, 0.0)
    with pytest.raises(ValueError):
        split_throughput(1.0, [1, 0])
    with pytest.raises(ValueError):
        split_throughput(1.0)


def test_plan_shared_link_gives_each_vm_its_budget() -> None:
    vms = [VmInterval((1, 1), (10_000, 0)), VmInterval((1,), (10_000,))]
    plans = plan_shared_link(640e6, vms, [3, 1])
    assert sum(plans[0].shares) == budget_pages(480e6)
    assert sum(plans[1].shares) == budget_pages(160e6)
    assert plans[0].throttled == (True, False)
    equal = plan_shared_link(640e6, vms)
    assert sum(equal[0].shares) == sum(equal[1].shares) == budget_pages(320e6)


def test_quota_exhaustion_holds_throttling_on() -> None:
    """A throttled guest whose dirtying is held just under 50% keeps the throttle while
    some vCPU still exhausts its quota; without that flag the contract rule switches off."""
    held = TriggerState(active=True)
    plain = TriggerState(active=True)
    for _ in range(5):
        held = held.on_sync(49, 100, quota_exhausted=True)
        plain = plain.on_sync(49, 100)
    assert held.active
    assert not plain.active
    # exhaustion alone never starts throttling
    idle = TriggerState()
    for _ in range(5):
        idle = idle.on_sync(10, 100, quota_exhausted=True)
    assert not idle.active
