"""The dirty-limit backend against QMP transcripts recorded from a real QEMU 10.0.2.

tests/agent/transcripts/record.py recorded them on this host: `-accel kvm` with
`dirty-ring-size=4096` (this /dev/kvm serves the dirty ring to QEMU although it cannot boot
ordinary guests), plain `-accel kvm`, and `-accel tcg`. Whether the limits actually slow a
dirtying guest is verified on KVM hosts only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import require
from dirtier_guest import write as write_guest
from qmp_direct import DirectQemu
from replay import Replay

from dq_agent.agent import backends
from dq_agent.agent.backends import QuotaPlan
from dq_agent.agent.backends.dirty_limit import (
    DirtyLimitBackend,
    mib_s_to_pages_per_interval,
    pages_per_interval_to_mib_s,
)

PLAN = QuotaPlan(
    budget_pages=128,
    interval_ms=10,
    deadline_ms=3000,
    pool_cap_pages=512,
    burst_pages=128,
    vcpu_weights=(3, 1),
)


def test_kvm_dirty_ring_session_replays() -> None:
    r = Replay("dirty-limit-kvm-dirty-ring")
    b = DirtyLimitBackend()
    assert b.probe(r).available
    b.apply(r, PLAN)
    reading = b.read(r)
    assert reading is not None and reading.enforcing
    # 128 pages/10 ms split 3:1 by the engine = 96 and 32 pages = 37.5 and 12.5 MiB/s.
    assert [v.quota_pages for v in reading.vcpus] == [
        mib_s_to_pages_per_interval(37, 10),
        mib_s_to_pages_per_interval(12, 10),
    ]
    assert all(v.dirty_rate_bps is not None for v in reading.vcpus)
    b.release(r)
    after = b.read(r)
    assert after is not None and not after.enforcing and after.vcpus == ()
    assert r.finished


@pytest.mark.parametrize(
    ("name", "reason"),
    [("dirty-limit-kvm-no-ring", "dirty ring is off"), ("dirty-limit-tcg", "not run under KVM")],
)
def test_unavailable_sessions_say_why(name: str, reason: str) -> None:
    r = Replay(name)
    a = DirtyLimitBackend().probe(r)
    assert not a.available and reason in a.reason
    # The transcript also holds QEMU's own refusal, proving the probe told the truth.
    refused = r.exchanges[-1]
    assert refused["execute"] == "set-vcpu-dirty-limit" and "error" in refused["reply"]


def test_auto_choice_falls_to_dirty_limit_on_stock_kvm() -> None:
    """auto = first backend that can work; stock QEMU has no dirty-quota commands."""
    r = Replay("dirty-limit-kvm-dirty-ring")
    calls: list[str] = []

    def stock_qemu(command: str, arguments: dict[str, object] | None) -> object:
        calls.append(command)
        if command == "query-dirty-quota":
            from dq_agent.agent.qmp import QmpError

            raise QmpError(
                command, "CommandNotFound", "The command query-dirty-quota has not been found"
            )
        return r(command, arguments)

    b, probes = backends.choose("auto", stock_qemu)
    assert b.name == "dirty-limit"
    assert not probes["dirty-quota"].available and probes["dirty-limit"].available


def test_rate_conversion_never_zero() -> None:
    # 0 MiB/s would mean "cancel" to QEMU: the smallest limit is 1.
    assert pages_per_interval_to_mib_s(0, 10) == 1
    assert pages_per_interval_to_mib_s(256, 1000) == 1
    assert pages_per_interval_to_mib_s(2560, 10) == 1000


def test_live_kvm_dirty_ring(tmp_path: Path) -> None:
    """The same calls against a live QEMU with the KVM dirty ring, when /dev/kvm serves it."""
    require(os.access("/dev/kvm", os.R_OK | os.W_OK), "/dev/kvm not usable")
    q = DirectQemu(
        "/usr/bin/qemu-system-x86_64",
        tmp_path,
        "kvm,dirty-ring-size=4096",
        write_guest(tmp_path / "g.bin", 8),
    )
    try:
        b = DirtyLimitBackend()
        assert b.probe(q.execute).available
        b.apply(q.execute, PLAN)
        reading = b.read(q.execute)
        assert reading is not None
        assert [v.quota_pages for v in reading.vcpus] == [
            mib_s_to_pages_per_interval(37, 10),
            mib_s_to_pages_per_interval(12, 10),
        ]
        b.release(q.execute)
        assert q.execute("query-vcpu-dirty-limit", None) == []
    finally:
        q.close()
