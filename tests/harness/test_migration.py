"""Real TCG guests migrated over a real tc-shaped netns link (issue 3, tests 1-4).

Machine-load tolerant: throughput assertions compare windows of the same run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from statistics import fmean
from typing import Any

import pytest

from dq_agent.harness import RunOptions, compare, load_scenario, run_migration
from dq_agent.schema import validate

from .conftest import leftover_netns

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

# Small and fast: 256 MiB guest, 2 vCPUs, pages rewritten often (the 7.2 bug shows).
CONTROL = {
    "name": "control",
    "memory_mib": 256,
    "link_mbit": 100,
    "baseline_s": 2,
    "timeout_s": 40,
    "vcpus": [
        {"phases": [{"kind": "dirty", "rate_mbps": 8, "ws_mib": 2, "pattern": "seq"}]},
        {"phases": [{"kind": "dirty", "rate_mbps": 8, "ws_mib": 2, "pattern": "rand"}]},
    ],
}
AUTO = {"initial": 60, "increment": 20}


def _opts(app: Path, **kw: Any) -> RunOptions:
    return RunOptions(accel="tcg", appliance=app, **kw)


def test_uniform_converges_with_none_and_arrives_intact(appliance: Path) -> None:
    sc = load_scenario("uniform", baseline_s=2)
    doc = run_migration(sc, "none", opts=_opts(appliance))
    validate(doc)
    s = doc["summary"]
    assert s["converged"] and s["status"] == "completed"
    assert s["alive_on"] == "destination"
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["bad_pages"] == 0
    assert s["integrity"]["guest"]["pages"] == 2 * 16 * 256  # every owned page checked
    assert s["integrity"]["ram_compare"]["differing"] == 0
    assert s["downtime_ms"] is not None and s["bytes_sent"] > 64 * 2**20
    # one record per poll, 50-100 ms apart (median; a loaded host may stretch a few)
    ts = [r["t"] for r in doc["progress"]]
    gaps = sorted(b - a for a, b in pairwise(ts))
    assert 0.05 <= gaps[len(gaps) // 2] <= 0.13
    assert {r["status"] for r in doc["progress"]} >= {"active", "completed"}
    assert {g["side"] for g in doc["guest_timeline"]} == {"src", "dst"}
    assert doc["environment"]["accel"] == "tcg"
    assert s["boot_s"] < 30  # appliance boot to a running workload under TCG


@pytest.fixture(scope="module")
def skewed(appliance: Path) -> dict[str, dict[str, Any]]:
    """none / auto-converge / dirty-limit on fresh guests over one shaped link."""
    sc = load_scenario("skewed", timeout_s=25, baseline_s=3)
    runs = compare(
        sc, [("none", {}), ("auto-converge", AUTO), ("dirty-limit", {})], _opts(appliance)
    )
    for r in runs:
        validate(r)
    return {r["policy"]["name"]: r for r in runs}


def test_skewed_none_is_cancelled_and_intact_on_source(skewed: dict[str, Any]) -> None:
    s = skewed["none"]["summary"]
    assert not s["converged"] and s["status"] == "cancelled"
    assert 25 <= s["total_time_s"] <= 60  # bounded: cancelled after timeout_s
    assert s["alive_on"] == "source"
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["guest"]["side"] == "src"
    assert s["iterations"] >= 2 and s["bytes_sent"] > 0


def _compute_ops(doc: dict[str, Any], lo: float, hi: float) -> float:
    """Mean ops/s of the compute-only vCPU 1 over migration-relative window (lo, hi]."""
    vals = [
        g["ops_per_s"]
        for g in doc["guest_timeline"]
        if g["vcpu"] == 1 and g["t_mig"] is not None and lo < g["t_mig"] <= hi
    ]
    assert vals, f"no compute samples in ({lo}, {hi}]"
    return fmean(vals)


def test_auto_converge_throttles_everyone(skewed: dict[str, Any]) -> None:
    doc = skewed["auto-converge"]
    s = doc["summary"]
    assert s["alive_on"] in ("source", "destination")
    assert s["integrity"]["verdict"] == "ok"
    pct = [r["throttle_pct"] or 0 for r in doc["progress"]]
    steps = sorted(set(pct) - {0})
    assert steps and steps[0] == AUTO["initial"], steps
    assert len(steps) >= 2 and max(pct) > steps[0], "throttle did not rise"
    assert all(b >= a for a, b in pairwise(pct) if b), "throttle fell"
    # the compute-only vCPU dirties nothing, yet loses throughput under the throttle:
    # compare the unthrottled part of this migration with the heavily throttled part
    t_on = next(r["t"] for r in doc["progress"] if (r["throttle_pct"] or 0) > 0)
    t_end = doc["progress"][-1]["t"]
    free = _compute_ops(doc, 0.5, t_on)
    throttled = _compute_ops(doc, t_on + 0.5, t_end)
    assert throttled < 0.7 * free, f"compute vCPU {free:.0f} -> {throttled:.0f} ops/s"
    # (summary throughput_retained compares with the pre-migration baseline; on this shared
    # 2-core host that baseline swings 2-3x with other jobs, so it is recorded, not asserted)
    assert s["vcpus"][1]["throughput_retained"] is not None


def test_dirty_limit_reports_unavailable_under_tcg(skewed: dict[str, Any]) -> None:
    s = skewed["dirty-limit"]["summary"]
    assert "unavailable" in s and "dirty" in s["unavailable"].lower(), s.get("unavailable")
    assert s["status"] == "not-started"


def test_positive_control_qemu72_loses_pages(appliance: Path, qemu72: str) -> None:
    sc = load_scenario(CONTROL)
    doc = run_migration(sc, "none", opts=_opts(appliance, qemu=qemu72, allow_old_qemu=True))
    s = doc["summary"]
    assert doc["environment"]["qemu_version"].startswith("7.2")
    assert s["converged"], "7.2 reports success..."
    assert s["integrity"]["verdict"] == "corrupt" and s["integrity"]["bad_pages"] > 0


def test_qemu72_refused_without_override(appliance: Path, qemu72: str) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "dq_agent.harness.cli", "run", "--scenario", "uniform",
         "--accel", "tcg", "--qemu", qemu72],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2 and "loses dirty pages" in p.stderr and "--allow-old-qemu" in p.stderr


def test_positive_control_corruption_on_stopped_destination(appliance: Path) -> None:
    # vCPU 1 only reads its pages, so a corrupted page stays corrupt until the check
    reader = {"phases": [{"kind": "dirty", "rate_mbps": 8, "ws_mib": 4, "write_pct": 0}]}
    sc = load_scenario({**CONTROL, "vcpus": [CONTROL["vcpus"][0], reader]})
    doc = run_migration(sc, "none", opts=_opts(appliance, corrupt_page=(1, 5)))
    integ = doc["summary"]["integrity"]
    assert doc["summary"]["converged"]
    assert integ["ram_compare"]["differing"] == 0  # the migration itself was clean
    assert integ["guest"]["bad"] == 1 and integ["verdict"] == "corrupt"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_tears_everything_down(appliance: Path, sig: signal.Signals) -> None:
    p = subprocess.Popen(
        [sys.executable, "-m", "dq_agent.harness.cli", "-v", "run", "--scenario", "skewed",
         "--accel", "tcg"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    prefix = f"dqh-{p.pid % 100000:x}"
    assert p.stderr is not None
    deadline = time.monotonic() + 90
    for line in p.stderr:
        if "guest ready" in line or time.monotonic() > deadline:
            break
    assert leftover_netns(prefix), "run did not create its namespaces"
    p.send_signal(sig)
    p.wait(timeout=60)
    assert p.returncode == 130
    assert not leftover_netns(prefix)
    mine = subprocess.run(["pgrep", "-f", f"ip netns exec {prefix}"], capture_output=True)
    procs = subprocess.run(["pgrep", "-f", "qemu-system"], capture_output=True, text=True)
    for pid in procs.stdout.split():
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes() if os.path.exists(f"/proc/{pid}") else b""
        assert prefix.encode() not in cmd
    assert mine.returncode == 1
    assert not list(Path("/dev/shm").glob("skewed-none-*.ram")) or _only_others()


def _only_others() -> bool:
    """RAM files left by a parallel run of someone else are fine; ours carry no pid, so
    only accept leftovers whose QEMU is still running."""
    live = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True).stdout
    return all(f.name in live for f in Path("/dev/shm").glob("skewed-none-*.ram"))
