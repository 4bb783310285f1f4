"""Live: Debian's Prometheus scrapes the agent's collector, node_exporter and the Pushgateway;
every dashboard query (panels, annotations, variables) must return data."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import require
from dashboards_lib import files, load, queries, variable_queries
from monitoring_stack import Stack, free_port, missing_binaries, stack
from monitoring_synth import history

from dq_agent.nightly.push import METRIC_NAMES, push_guest_throughput, push_run
from dq_agent.nightly.textfile import write_tc_limit


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require(not missing_binaries(), f"missing {missing_binaries()} (tools/deps/apt-monitoring.txt)")
    import agent_feed

    tmp = tmp_path_factory.mktemp("live")
    agent_port = free_port()
    with agent_feed.serve(agent_port), stack(tmp, agent_port) as s:
        recs = history(3, reps=2, seed=2)
        last_night = [r for r in recs if r.night == recs[-1].night]
        for rec in last_night:  # what the nightly job does after each run
            push_run(s.pushgateway, rec, [0.9, 0.6], recs, time.time())
        push_guest_throughput(s.pushgateway, agent_feed.DOMAIN, agent_feed.HOST, [18e6, 2e6])
        write_tc_limit(s.textfile_dir, "lo", 100e6)
        # rates need two samples inside $__rate_interval; recording rules one evaluation
        assert s.wait_for('up{job="dq_agent"} == 1'), "agent not scraped"
        assert s.wait_for('up{job="node"} == 1'), "node_exporter not scraped"
        assert s.wait_for("scenario_bandwidth_policy:dq_run_total_time_seconds:p50")
        assert s.wait_for("rate(dq_vcpu_dirtied_pages_total[20s]) > 0")
        assert s.wait_for("rate(node_network_transmit_bytes_total[20s])")
        yield s


def test_every_panel_query_returns_data(live: Stack) -> None:
    empty = []
    n = 0
    for f in files():
        for where, expr in queries(load(f)):
            n += 1
            # a fresh target needs a couple of scrapes before rate() has two samples
            if not live.wait_for(expr, timeout=15):
                empty.append(f"{where}: {expr}")
    assert n >= 40
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_every_variable_lists_values(live: Stack) -> None:
    for f in files():
        for where, expr in variable_queries(load(f)):
            assert live.query(expr), f"{where}: {expr}"


def test_pushed_summaries_show_up_in_prometheus(live: Stack) -> None:
    for name in METRIC_NAMES:
        suffix = (
            "_count"
            if name
            in (
                "dq_run_total_time_seconds",
                "dq_run_downtime_seconds",
                "dq_run_throughput_retained_ratio",
            )
            else ""
        )
        res = live.query(name + suffix)
        assert res, name
        labels = res[0]["metric"]
        assert labels["job"] == "dqlab_runs"
        assert {"scenario", "policy", "bandwidth"} <= labels.keys(), labels
    # 3 nights x 2 reps per policy recorded in the history -> counters say 6
    runs = {r["metric"]["policy"]: float(r["value"][1]) for r in live.query("dq_runs_total")}
    assert runs == {"auto-converge": 6.0, "dirty-quota": 6.0}
    retained = live.query('dq_run_last_throughput_retained_ratio{policy="dirty-quota",vcpu="1"}')
    assert float(retained[0]["value"][1]) == pytest.approx(0.6)


def test_tc_limit_and_node_nic_have_host_label(live: Stack) -> None:
    res = live.query('dq_tc_rate_bits_per_second{host="local",device="lo"}')
    assert res and float(res[0]["value"][1]) == 100e6
    assert live.query('node_network_transmit_bytes_total{host="local"}')
