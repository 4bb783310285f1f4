"""Serve the agent's real collector (dq_agent.agent.metrics.AgentCollector) over HTTP.

NAMED FAKE: the controller state it exposes is a scripted migration (counters advance, bytes
drain, iterations tick) instead of one read from a live QEMU: the live-query test checks
the exposition -> scrape -> rules -> dashboard-query chain, which is all real. The metric
names and label sets are the agent's own, so a renamed metric breaks this test.
"""

from __future__ import annotations

import time
import types
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, start_http_server

from dq_agent.agent.backends.base import Availability, QuotaPlan, Reading, VcpuReading
from dq_agent.agent.controller import Migration, Snapshot
from dq_agent.agent.jobstats import JobStats
from dq_agent.agent.metrics import AgentCollector

HOST = "local"
DOMAIN = "dq-guest"
GIB = 2**30


class ScriptedMigration:
    """A 1 GiB migration of a 2-vCPU guest, vCPU 0 dirtying hard and vCPU 1 lightly."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.loops = 0

    def snapshot(self) -> Snapshot:
        t = time.monotonic() - self.t0
        self.loops += 1
        remaining = int(max(0.05, 1 - t / 120) * GIB)
        stats = JobStats(
            type=2,
            time_elapsed_ms=int(t * 1000),
            data_total=GIB,
            data_processed=GIB - remaining,
            data_remaining=remaining,
            memory_dirty_rate_pages=2500,
            memory_iteration=int(t // 3) + 1,
            memory_bps=11_000_000,
            expected_downtime_ms=300,
            auto_converge_throttle=0,
        )
        vcpus = tuple(
            VcpuReading(
                cpu_index=i,
                quota_pages=120 if i == 0 else 40,
                dirty_pages=int(t * rate),
                pool_drawn_pages=int(t * draw),
                exhausted_count=int(t * exh),
                sleep_ns=int(t * sleep * 1e9),
            )
            for i, (rate, draw, exh, sleep) in enumerate(((9000, 300, 50, 0.4), (800, 5, 0, 0.0)))
        )
        mig = Migration(
            domain=DOMAIN,
            backend=types.SimpleNamespace(name="dirty-quota"),  # type: ignore[arg-type]
            probes={"dirty-quota": Availability(True), "dirty-limit": Availability(False, "tcg")},
            vcpus=2,
            link="eth0",
            weight=1,
            vcpu_weights=(1, 1),
            enabled=True,
            estimator=None,  # type: ignore[arg-type]
            trigger=None,  # type: ignore[arg-type]
            stats=stats,
            throughput_bps=11_500_000.0,
            plan=QuotaPlan(
                budget_pages=140,
                interval_ms=10,
                deadline_ms=3000,
                pool_cap_pages=560,
                burst_pages=140,
                vcpu_weights=(1, 1),
            ),
            reading=Reading(enforcing=True, pool_pages=int(100 + 50 * (t % 2)), vcpus=vcpus),
            enforcing=True,
        )
        return Snapshot(
            migrations=(mig,),
            errors={"qmp": int(t // 10)},
            loop_count=self.loops,
            loop_seconds_sum=self.loops * 0.004,
            last_loop_seconds=0.004,
            connected=True,
            configured_backend="auto",
        )


@contextmanager
def serve(port: int) -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(AgentCollector(ScriptedMigration().snapshot, HOST))
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
