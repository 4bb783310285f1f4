"""A real dirty-quota migration on the provisioned lab, watched by the real monitoring
stack, then every dashboard query asked of the lab's Prometheus over that run.

playbooks/migrate.yml migrates a skewed guest (vCPU0 dirties 40 MB/s, vCPU1 computes)
dq-src -> dq-dst over 100 Mbit/s; the dq-agent site.yml deployed on dq-src enforces the
quota (the run is declared dirty-quota), node_exporter on every host and the Pushgateway
on dq-mon are scraped by Prometheus on dq-mon, dq_link publishes the tc limit, and the
migration driver pushes the guest's per-vCPU throughput. The run's summary is then recorded
and pushed the way ./dqlab compare does. No part of this is scripted or fake.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.ansible.ansible_run import CACHE, REPO, playbook
from tests.lab.labhosts import ADDRESS, INVENTORY
from tests.monitoring.dashboards_lib import files, load, queries, variable_queries

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PROMETHEUS = f"http://{ADDRESS['dq-mon']}:9090"
GATEWAY = f"{ADDRESS['dq-mon']}:9091"


@dataclass
class LiveRun:
    doc: dict[str, Any]
    t0: float  # wall clock around the playbook run
    t1: float
    results: Path


def prom(path: str, **params: str | float) -> list[dict[str, Any]]:
    url = f"{PROMETHEUS}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=20) as r:
        body = json.load(r)
    assert body.get("status") == "success", f"{params}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def over_run(run: LiveRun, expr: str, settle_s: float = 0) -> list[dict[str, Any]]:
    """The query as a dashboard showing this run evaluates it: a range query over the
    run's window (plus the scrapes after it), at the dashboard's 5 s resolution."""
    deadline = time.monotonic() + settle_s
    while True:
        res = prom("query_range", query=expr, start=run.t0 - 30, end=time.time(), step=5)
        if res or time.monotonic() > deadline:
            return res
        time.sleep(1)


def wait_for(expr: str, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        res = prom("query", query=expr)
        if res or time.monotonic() > deadline:
            return res
        time.sleep(1)


@pytest.fixture(scope="module")
def live_run(provisioned_lab: object) -> LiveRun:
    t0 = time.time()
    out = playbook(
        *INVENTORY,
        "playbooks/migrate.yml",
        "-e",
        json.dumps(
            {
                "dq_scenario_workload": "skewed",
                "dq_scenario_policies": ["dirty-quota"],
                "dq_scenario_bandwidths": ["100mbit"],
                "dq_scenario_timeout_s": 90,
            }
        ),
    )
    t1 = time.time()
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    results = Path((CACHE / "results" / "latest").resolve())
    runs = sorted(results.glob("run-*.json"))
    assert len(runs) == 1, runs
    # What ./dqlab compare does next: history + Pushgateway (summaries for the overview).
    rec = subprocess.run(
        [
            sys.executable,
            "-m",
            "dq_agent.nightly",
            "record",
            "--history",
            str(results / "history.jsonl"),
            "--gateway",
            GATEWAY,
            str(runs[0]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert rec.returncode == 0, rec.stderr[-2000:]
    return LiveRun(json.loads(runs[0].read_text()), t0, t1, results)


def test_dirty_quota_run_converges_verified_and_selective(live_run: LiveRun) -> None:
    from dq_agent.schema import validate

    doc = live_run.doc
    validate(doc)
    s = doc["summary"]
    assert doc["environment"]["via"] == "libvirt"
    assert doc["environment"]["git_commit"], "the run must record the checkout's commit"
    assert doc["link"]["rate_bps"] == 100_000_000
    # The host's agent enforced it, nobody else (two set-dirty-quota writers would fight).
    assert doc["policy"]["params"] == {"enforced_by": "dq-agent"}, doc["policy"]
    assert "policy_error" not in s, s
    assert s["converged"] is True, s
    assert s["alive_on"] == "destination", s  # checked on both hosts: exactly one runs it
    assert s["integrity"] == {"checked": True, "bad_pages": 0, "verdict": "ok"}, s
    assert s["downtime_ms"] is not None and s["bytes_sent"] > 0
    dirtier, compute = s["vcpus"]
    # Selective: the dirtying vCPU slept (QEMU's sleep counter), the computing one did not.
    assert dirtier["runtime_pct"] < 90, s["vcpus"]
    assert compute["runtime_pct"] >= 95, s["vcpus"]
    assert any("quota" in p and p["quota"]["enabled"] for p in doc["progress"])


def test_every_panel_query_returns_data_from_the_run(live_run: LiveRun) -> None:
    assert wait_for('dq_runs_total{policy="dirty-quota"}'), "pushed summary never scraped"
    # Recording rules evaluate every 5 s; give them one pass over the pushed summary.
    assert wait_for("scenario_bandwidth_policy:dq_run_total_time_seconds:p50")
    empty, n = [], 0
    for f in files():
        for where, expr in queries(load(f)):
            n += 1
            # A pushed series needs two scrapes before increase() has data: retry briefly.
            if not over_run(live_run, expr, settle_s=15):
                empty.append(f"{where}: {expr}")
    assert n >= 40
    assert not empty, "queries without data over the run:\n" + "\n".join(empty)


def test_every_variable_lists_values_from_the_run(live_run: LiveRun) -> None:
    for f in files():
        for where, expr in variable_queries(load(f)):
            assert over_run(live_run, expr), f"{where}: {expr}"


def test_run_series_carry_the_lab_labels(live_run: LiveRun) -> None:
    """What the dashboards join on: the agent's host/domain labels, node_exporter's host,
    the tc limit the lab applied, the guest throughput per vCPU, the pushed summary."""
    quota = over_run(live_run, 'dq_vcpu_quota_pages{host="dq-src",domain="dq-guest"}')
    assert {r["metric"]["vcpu"] for r in quota} == {"0", "1"}, quota
    sleep = over_run(
        live_run, 'max_over_time(dq_vcpu_throttle_sleep_seconds_total{host="dq-src"}[1h])'
    )
    slept = {r["metric"]["vcpu"]: max(float(v[1]) for v in r["values"]) for r in sleep}
    assert slept["0"] > 0.5 > slept.get("1", 0.0), slept
    tc = over_run(live_run, 'dq_tc_rate_bits_per_second{host="dq-src",device="eth0"}')
    assert tc and {float(v[1]) for r in tc for v in r["values"]} == {100e6}, tc
    guest = over_run(
        live_run, 'dq_guest_workload_bytes_per_second{domain="dq-guest",host="dq-src"}'
    )
    assert {r["metric"]["vcpu"] for r in guest} == {"0", "1"}, guest
    nic = over_run(
        live_run, 'rate(node_network_transmit_bytes_total{host="dq-src",device="eth0"}[20s]) * 8'
    )
    peak = max(float(v[1]) for r in nic for v in r["values"])
    # The migration stream filled the shaped NIC, and tc held it near 100 Mbit/s.
    assert 50e6 < peak < 115e6, peak
    runs = prom("query", query='dq_runs_total{policy="dirty-quota",scenario="skewed"}')
    assert runs and runs[0]["metric"]["bandwidth"] and runs[0]["metric"]["job"] == "dqlab_runs"
