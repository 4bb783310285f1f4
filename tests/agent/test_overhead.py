"""Overhead benchmark (reported, not asserted as time), with the FAKE libvirt/QMP layer.

- control loop: 8 guests x 8 vCPUs at a 100 ms tick; goal < 1% of one core;
- scrape: the collector + text exposition for 100 migrating guests x 8 vCPUs.
The fake excludes libvirt's RPC round trips (jobStats + 2 QMP calls per guest per tick);
test_full_path.py reports the real agent's CPU share for a real migration.
Results go to $DQ_CACHE/agent-tests/overhead.json and stdout.
"""

from __future__ import annotations

import json
import time

from fake_hypervisor import FakeGuest, FakeHypervisor
from lab_fixtures import AGENT_CACHE
from prometheus_client import CollectorRegistry, generate_latest

from dq_agent.agent.config import Config
from dq_agent.agent.controller import Controller
from dq_agent.agent.metrics import AgentCollector

TICK_S = 0.100


def _controller(n_guests: int, vcpus: int) -> tuple[Controller, FakeHypervisor, list[float]]:
    hv = FakeHypervisor([FakeGuest(f"g{i}", vcpus=vcpus) for i in range(n_guests)])
    clock = [0.0]
    c = Controller(Config(backend="dirty-quota", tick_ms=100), hv, lambda: clock[0])
    for n in hv.migrating_domains():
        c.adopt(n, "bench")
    return c, hv, clock


def test_control_loop_and_scrape_overhead() -> None:
    c, hv, clock = _controller(8, 8)
    ticks = 200  # 20 s of agent time, run back to back
    cpu0 = time.process_time()
    for _ in range(ticks):
        clock[0] += TICK_S
        hv.advance(TICK_S)
        c.tick()
    cpu_per_tick = (time.process_time() - cpu0) / ticks
    core_share = cpu_per_tick / TICK_S
    qmp_per_tick = hv.qmp_calls / ticks
    jobstats_per_tick = hv.jobstats_calls / ticks
    # Add the real libvirt RPC cost measured by test_full_path.py::test_real_libvirt_call_cost.
    cost_file = AGENT_CACHE / "libvirt-call-cost.json"
    est_share = None
    if cost_file.exists():
        cost = json.loads(cost_file.read_text())
        rpc = jobstats_per_tick * cost["jobstats_cpu_s"] + qmp_per_tick * cost["qmp_cpu_s"]
        est_share = (cpu_per_tick + rpc) / TICK_S
    assert all(g.quota_calls for g in hv.guests.values())  # it really enforced every guest

    big, hv100, clock100 = _controller(100, 8)
    clock100[0] += TICK_S
    hv100.advance(TICK_S)
    big.tick()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AgentCollector(big.snapshot, "h"))
    scrapes = 20
    t0 = time.perf_counter()
    for _ in range(scrapes):
        body = generate_latest(reg)
    scrape_s = (time.perf_counter() - t0) / scrapes
    result = {
        "guests": 8,
        "vcpus_per_guest": 8,
        "tick_s": TICK_S,
        "cpu_seconds_per_tick": cpu_per_tick,
        "share_of_one_core": core_share,
        "qmp_calls_per_tick": qmp_per_tick,
        "jobstats_calls_per_tick": jobstats_per_tick,
        "share_with_measured_libvirt_rpc": est_share,
        "scrape_guests": 100,
        "scrape_seconds": scrape_s,
        "scrape_bytes": len(body),
        "note": "FAKE libvirt/QMP layer; the RPC share adds the real per-call cost",
    }
    AGENT_CACHE.mkdir(parents=True, exist_ok=True)
    (AGENT_CACHE / "overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"\ncontrol loop 8x8 @100ms: {cpu_per_tick * 1e3:.2f} ms CPU/tick = "
        f"{core_share * 100:.2f}% of one core without libvirt RPC; "
        f"{qmp_per_tick:.2f} QMP + {jobstats_per_tick:.0f} jobStats calls per tick"
    )
    if est_share is not None:
        print(f"with the measured libvirt RPC cost: {est_share * 100:.2f}% of one core (goal < 1%)")
    print(f"scrape, 100 guests x 8 vCPUs: {scrape_s * 1e3:.1f} ms, {len(body)} bytes")
