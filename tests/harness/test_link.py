"""Test 5: the tc-shaped veth link holds its rate (measured with iperf3 across it)."""

from __future__ import annotations

import pytest

from dq_agent.harness import Link, measure_link

from .conftest import leftover_netns, need_root_netns


@pytest.mark.slow
@pytest.mark.parametrize("rate", [100.0, 20.0])
def test_tc_rate_holds_within_10_percent(rate: float) -> None:
    need_root_netns()
    with Link(rate) as link:
        got = measure_link(link, seconds=3)
        stats = link.tc_stats()
        names = (link.src_ns, link.dst_ns)
    assert 0.90 * rate <= got <= 1.10 * rate, f"{got:.1f} Mbit/s on a {rate:g} Mbit/s link"
    assert stats["bytes"] > got * 1e6 / 8 * 2  # the traffic really went through htb
    assert not leftover_netns(names[0]) and not leftover_netns(names[1])
