"""Control-loop decisions (uses the FAKE hypervisor from fake_hypervisor.py).

Link sharing, deadline renewal, release on migration end and on stop; the numbers come
from dq_agent.engine, so these tests check the wiring, not the rules.
"""

from __future__ import annotations

import itertools

from fake_hypervisor import FakeGuest, FakeHypervisor

from dq_agent.agent.config import Config, DomainPolicy
from dq_agent.agent.controller import Controller
from dq_agent.engine import budget_pages


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _run(
    cfg: Config, guests: list[FakeGuest], ticks: int = 10
) -> tuple[Controller, FakeHypervisor]:
    hv = FakeHypervisor(guests)
    clock = Clock()
    c = Controller(cfg, hv, clock)
    for name in hv.migrating_domains():
        c.adopt(name, "test")
    for _ in range(ticks):
        clock.t += cfg.tick_ms / 1000
        hv.advance(cfg.tick_ms / 1000)
        c.tick()
    return c, hv


def test_two_migrations_share_one_link_by_weight() -> None:
    cfg = Config(
        backend="dirty-quota", domains={"a": DomainPolicy(weight=3), "b": DomainPolicy(weight=1)}
    )
    # Each measures its own stream; together they are what the link carries: 20 MB/s.
    _, hv = _run(cfg, [FakeGuest("a", link_bps=15e6), FakeGuest("b", link_bps=5e6)])
    a = hv.guests["a"].quota_calls[-1]["budget-pages"]
    b = hv.guests["b"].quota_calls[-1]["budget-pages"]
    assert a == budget_pages(15e6, 0.010, 0.5) and b == budget_pages(5e6, 0.010, 0.5)
    assert abs(a / b - 3) < 0.05


def test_renewals_stay_inside_the_deadline_and_carry_the_plan() -> None:
    cfg = Config(backend="dirty-quota", deadline_ms=1000, tick_ms=200, pool_cap_budgets=2)
    _, hv = _run(cfg, [FakeGuest("g")], ticks=20)
    g = hv.guests["g"]
    calls, times = g.quota_calls, g.quota_times
    # Renewed once a third of the deadline has passed (rounded up to a tick), not every
    # tick: QMP through libvirt is the agent's main cost.
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps and max(gaps) <= 0.4 + 1e-9 and len(calls) < 20
    last = calls[-1]
    assert last["deadline-ms"] == 1000 and last["interval-ms"] == 10
    assert last["pool-cap-pages"] == 2 * last["budget-pages"]
    assert last["weights"] == [1] * 8


def test_release_when_migration_ends_and_on_stop() -> None:
    cfg = Config(backend="dirty-quota")
    c, hv = _run(cfg, [FakeGuest("a"), FakeGuest("b")], ticks=3)
    hv.guests["a"].migrating = False
    c.tick()
    assert hv.guests["a"].cancels == 1 and c.active == ["b"]
    c.release_all("stop")
    assert hv.guests["b"].cancels == 1 and c.active == []


def test_opted_out_domain_is_observed_only() -> None:
    cfg = Config(backend="dirty-quota", domains={"keep": DomainPolicy(enabled=False)})
    c, hv = _run(cfg, [FakeGuest("keep")], ticks=3)
    assert hv.guests["keep"].quota_calls == []
    assert c.snapshot().migrations[0].backend.name == "observe"


def test_domain_vanishing_mid_tick_is_not_an_error() -> None:
    cfg = Config(backend="dirty-quota")
    c, hv = _run(cfg, [FakeGuest("a")], ticks=2)
    del hv.guests["a"]  # migrated away: the source domain is gone
    c.tick()
    assert c.active == [] and c.snapshot().errors == {}


def test_budget_change_is_sent_at_once() -> None:
    cfg = Config(backend="dirty-quota", deadline_ms=3000, tick_ms=200)
    c, hv = _run(cfg, [FakeGuest("g", link_bps=10e6)], ticks=6)
    g = hv.guests["g"]
    before = len(g.quota_calls)
    g.link_bps = 2e6  # the link slows down: the estimate and the budget drop
    for _ in range(2):
        hv.advance(0.2)
        c.clock.t += 0.2  # type: ignore[attr-defined]
        c.tick()
    assert len(g.quota_calls) > before
    assert g.quota_calls[-1]["budget-pages"] < g.quota_calls[before - 1]["budget-pages"]


def test_a_bug_in_one_migration_does_not_stop_the_others() -> None:
    cfg = Config(backend="dirty-quota")
    c, hv = _run(cfg, [FakeGuest("a"), FakeGuest("b")], ticks=2)

    def broken() -> None:
        raise ZeroDivisionError("bug")

    hv.guests["a"].stats = broken  # type: ignore[method-assign]
    before = len(hv.guests["b"].quota_calls)
    for _ in range(10):
        c.clock.t += 0.2  # type: ignore[attr-defined]
        hv.advance(0.2)
        c.tick()
    assert c.snapshot().errors.get("internal", 0) == 10
    assert len(hv.guests["b"].quota_calls) > before  # b is still controlled


def test_domain_declaring_another_policy_is_observed_only() -> None:
    cfg = Config(backend="dirty-quota")
    guests = [
        FakeGuest("plain", vcpus=2),
        FakeGuest("dq", vcpus=2, declared="dirty-quota"),
        FakeGuest("none", vcpus=2, declared="none"),
        FakeGuest("ac", vcpus=2, declared="auto-converge"),
    ]
    c, hv = _run(cfg, guests, ticks=3)
    assert hv.guests["plain"].quota_calls and hv.guests["dq"].quota_calls
    assert hv.guests["none"].quota_calls == [] and hv.guests["ac"].quota_calls == []
    by_name = {m.domain: m for m in c.snapshot().migrations}
    assert by_name["none"].backend.name == "observe" and not by_name["none"].enforcing
    assert by_name["none"].declared_policy == "none"


def test_declaring_dirty_quota_does_not_override_a_config_opt_out() -> None:
    cfg = Config(backend="dirty-quota", domains={"dq": DomainPolicy(enabled=False)})
    _c, hv = _run(cfg, [FakeGuest("dq", declared="dirty-quota")], ticks=3)
    assert hv.guests["dq"].quota_calls == []
