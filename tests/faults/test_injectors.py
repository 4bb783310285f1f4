"""Each fault injector really injects its fault, and really undoes it (fast, no guests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from netpair import net_pair, our_netns
from traffic import can_connect, tcp_send_seconds, udp_delivered

from dq_agent.faults import (
    FaultError,
    bandwidth_collapse,
    kill_process,
    link_cut,
    packet_loss,
    paused,
)
from dq_agent.faults.bandwidth import find_shaper
from dq_agent.faults.loss import tables
from dq_agent.faults.process import _state

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="netns needs root")


def test_link_cut_blocks_then_restores() -> None:
    with net_pair() as p:
        a = p.exec_a()
        assert can_connect(a, p.ip_b)
        with link_cut(p.ns_a, p.dev_a) as w:
            assert not can_connect(a, p.ip_b)
        assert w.ended is not None and w.seconds > 0
        assert can_connect(a, p.ip_b)


def test_link_cut_restores_on_error() -> None:
    with net_pair() as p:
        with pytest.raises(RuntimeError, match="boom"), link_cut(p.ns_a, p.dev_a):
            raise RuntimeError("boom")
        assert can_connect(p.exec_a(), p.ip_b)


def test_packet_loss_drops_about_five_percent() -> None:
    n = 4000
    with net_pair() as p:
        base = udp_delivered(p.exec_a(), p.exec_b(), p.ip_b, n)
        assert base >= n * 0.995, f"baseline already lossy: {base}/{n}"
        with packet_loss(p.ns_a, 5):
            assert any(t.startswith("dqfault_loss_") for t in tables(p.ns_a))
            lossy = udp_delivered(p.exec_a(), p.exec_b(), p.ip_b, n)
        assert tables(p.ns_a) == []  # the table is gone: nothing leaks
        after = udp_delivered(p.exec_a(), p.exec_b(), p.ip_b, n)
    lost = 1 - lossy / n
    assert 0.025 < lost < 0.085, f"lost {lost:.3f}"
    assert after >= n * 0.995


def test_bandwidth_collapse_slows_then_restores() -> None:
    nbytes = 400_000
    with net_pair(rate="20mbit") as p:
        tx, rx = p.exec_a(), p.exec_b()
        before = find_shaper(p.ns_a, p.dev_a)
        assert before.kind == "htb" and before.rate_bps == 20_000_000
        fast = tcp_send_seconds(tx, rx, p.ip_b, nbytes)
        with bandwidth_collapse(p.ns_a, p.dev_a, 10):
            assert find_shaper(p.ns_a, p.dev_a).rate_bps == 2_000_000
            slow = tcp_send_seconds(tx, rx, p.ip_b, nbytes)
        assert find_shaper(p.ns_a, p.dev_a).rate_bps == 20_000_000
        again = tcp_send_seconds(tx, rx, p.ip_b, nbytes)
    assert slow > 4 * fast, (fast, slow)
    assert again < slow / 3, (again, slow)


def test_bandwidth_collapse_tbf() -> None:
    with net_pair() as p:
        subprocess.run(
            [
                "tc",
                "-n",
                p.ns_a,
                "qdisc",
                "add",
                "dev",
                p.dev_a,
                "root",
                "tbf",
                "rate",
                "50mbit",
                "burst",
                "32kb",
                "latency",
                "50ms",
            ],
            check=True,
        )
        with bandwidth_collapse(p.ns_a, p.dev_a, 10):
            assert find_shaper(p.ns_a, p.dev_a).rate_bps == 5_000_000
        assert find_shaper(p.ns_a, p.dev_a).rate_bps == 50_000_000


def test_refuses_host_namespace_and_bad_args() -> None:
    with pytest.raises(FaultError, match="does not exist"), link_cut("dqf-no-such-ns", "eth0"):
        pass
    with pytest.raises(FaultError, match="netns"), packet_loss("", 5):
        pass
    with net_pair() as p:
        with pytest.raises(FaultError, match="percent"), packet_loss(p.ns_a, 0):
            pass
        with (
            pytest.raises(FaultError, match="no htb class or tbf"),
            bandwidth_collapse(p.ns_a, p.dev_a),
        ):
            pass
    with pytest.raises(FaultError, match="pid"):
        kill_process(os.getpid())
    with pytest.raises(FaultError, match="pid"):
        kill_process(1)


def test_kill_and_pause() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with paused(proc.pid):
            state = _state(proc.pid)
            assert state == "T"
        time.sleep(0.05)
        state = _state(proc.pid)
        assert state != "T"
        w = kill_process(proc.pid, signal.SIGKILL)
        assert w.seconds < 5
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_no_netns_leak() -> None:
    before = our_netns()
    with net_pair():
        assert len(our_netns() - before) == 2
    assert our_netns() - before == set()
