"""dq-harness flags and scenario files: one line naming the field, exit 2, nothing left.

The harness names its namespaces `dqh-<pid in hex>...`, so a refused run's leftovers can
be found by the child's pid even while other harness runs are going on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from badinput_cli import Outcome, assert_refused


def run_harness(*args: str, cwd: Path | None = None, timeout: float = 120) -> tuple[Outcome, int]:
    p = subprocess.Popen(
        [sys.executable, "-m", "dq_agent.harness.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )
    out, err = p.communicate(timeout=timeout)
    return Outcome(p.returncode, out, err), p.pid


def leftover_netns(pid: int) -> list[str]:
    prefix = f"dqh-{pid % 100000:x}"
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [ln.split()[0] for ln in out.stdout.splitlines() if ln.startswith(prefix)]


FLAG_CASES = [
    (["run", "--scenario", "no-such-scenario"], "scenario"),
    (["run", "--scenario", "skewed", "--policy", "warp"], "policy"),
    (["run", "--scenario", "skewed", "--policy", "auto-converge", "--param", "initial=500"],
     "policy.params.initial"),
    (["run", "--scenario", "skewed", "--policy", "auto-converge", "--param", "bogus=1"],
     "policy.params.bogus"),
    (["run", "--scenario", "skewed", "--param", "x"], "--param"),
    (["run", "--scenario", "skewed", "--link-mbit", "0"], "link_mbit"),
    (["run", "--scenario", "skewed", "--link-mbit", "nan"], "link_mbit"),
    (["run", "--scenario", "skewed", "--link-mbit", "fast"], "--link-mbit"),
    (["run", "--scenario", "skewed", "--timeout", "-5"], "timeout_s"),
    (["run", "--scenario", "skewed", "--accel", "xen"], "--accel"),
    (["run"], "--scenario"),
    (["compare", "--scenario", "skewed", "--policies", ","], "--policies"),
    (["compare", "--scenario", "skewed", "--policies", "none,warp"], "warp"),
    (["link", "--rate-mbit", "0"], "--rate-mbit"),
    (["link", "--rate-mbit", "nan"], "--rate-mbit"),
    (["frobnicate"], "frobnicate"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "field"), FLAG_CASES, ids=[f for _, f in FLAG_CASES])
def test_bad_flags(tmp_path: Path, args: list[str], field: str) -> None:
    out, pid = run_harness(*args, cwd=tmp_path)
    assert_refused(out, field)
    assert leftover_netns(pid) == []
    assert list(tmp_path.iterdir()) == []


BAD_SCENARIOS = [
    ({"name": "x", "vcpus": []}, "vcpus"),
    ({"name": "", "vcpus": [{"phases": [{"kind": "idle"}]}]}, "name"),
    ({"name": "x", "memory_mib": 64, "vcpus": [{"phases": [{"kind": "idle"}]}]}, "memory_mib"),
    ({"name": "x", "vcpus": [{"phases": [{"kind": "dirty", "rate_mbps": -1}]}]},
     "vcpus[0].phases[0].rate_mbps"),
    ({"name": "x", "vcpus": [{"phases": [{"kind": "warp"}]}]}, "vcpus[0].phases[0].kind"),
    ({"name": "x", "vcpus": [{"phases": [{"pattern": "zigzag"}]}]}, "vcpus[0].phases[0].pattern"),
    ({"name": "x", "vcpus": [{"phases": [{"kind": "idle"}]}], "colour": 1}, "colour"),
    ({"name": "x", "memory_mib": 128,
      "vcpus": [{"phases": [{"kind": "dirty", "ws_mib": 4096}]}]}, "memory_mib"),
    ({"name": "x", "vcpus": [{"phases": [{"kind": "idle"}]}] * 17}, "vcpus"),
    ([1, 2], "scenario"),
]  # fmt: skip


@pytest.mark.parametrize(("doc", "field"), BAD_SCENARIOS, ids=[f for _, f in BAD_SCENARIOS])
def test_bad_scenario_file(tmp_path: Path, doc: object, field: str) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(doc))
    out, pid = run_harness("run", "--scenario", str(f), cwd=tmp_path)
    assert_refused(out, field)
    assert leftover_netns(pid) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_truncated_scenario_file(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text('{"name": "x",')
    out, _ = run_harness("run", "--scenario", str(f), cwd=tmp_path)
    assert_refused(out, "scenario")


@pytest.mark.skipif(os.geteuid() != 0, reason="the run creates a netns first")
@pytest.mark.parametrize("accel", ["auto", "tcg"])
def test_missing_qemu_binary(tmp_path: Path, accel: str) -> None:
    """--qemu naming a file that does not exist: one line naming --qemu/qemu, no traceback."""
    out, pid = run_harness(
        "run", "--scenario", "skewed", "--qemu", str(tmp_path / "no-qemu"), "--accel", accel,
        cwd=tmp_path,
    )  # fmt: skip
    assert_refused(out, "qemu")
    assert leftover_netns(pid) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="creates a netns")
def test_link_bad_seconds(tmp_path: Path) -> None:
    """`link --seconds -1` must be refused up front, not time out inside iperf3."""
    out, pid = run_harness("link", "--seconds", "-1", cwd=tmp_path, timeout=60)
    assert_refused(out, "--seconds")
    assert leftover_netns(pid) == []
