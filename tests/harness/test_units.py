"""Fast checks without guests: scenario validation, guest-line parsing, plug-ins, CLI."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from dq_agent.harness import ScenarioError, comparison_table, load_scenario
from dq_agent.harness.guest import GuestState
from dq_agent.harness.policies import available, make_policy
from dq_agent.harness.run import Run

GOOD: dict[str, Any] = {
    "name": "t",
    "vcpus": [{"phases": [{"kind": "dirty", "rate_mbps": 5, "ws_mib": 8}]}],
}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"memory_mib": 64}, "memory_mib"),
        ({"link_mbit": "fast"}, "link_mbit"),
        ({"vcpus": []}, "vcpus"),
        ({"vcpus": [{"phases": [{"kind": "burn"}]}]}, "vcpus[0].phases[0].kind"),
        ({"vcpus": [{"phases": [{"pattern": "zigzag"}]}]}, "vcpus[0].phases[0].pattern"),
        ({"vcpus": [{"phases": [{"write_pct": 101}]}]}, "vcpus[0].phases[0].write_pct"),
        ({"vcpus": [{"phases": [{"ws_mib": 4000}]}]}, "memory_mib"),
        ({"colour": "red"}, "colour"),
        ({"timeout_s": 1}, "timeout_s"),
    ],
)
def test_bad_scenario_names_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(ScenarioError) as e:
        load_scenario({**GOOD, **patch})
    assert str(e.value).startswith(field + ":"), str(e.value)


def test_builtin_scenarios_and_kernel_args() -> None:
    sc = load_scenario("skewed")
    assert sc.kernel_args()[0] == "dq.t0=dirty,rate=40,ws=16,w=100,pat=seq"
    assert sc.kernel_args()[1] == "dq.t1=compute"
    assert load_scenario("uniform").memory_mib == 256


def test_guest_lines_are_typed_and_cannot_inject() -> None:
    st = GuestState()
    st.feed("src", "DQ TP cpu=1 phase=0 ops=123.5 mbps=4.000 gt=99", 1.0)
    st.feed("src", "DQ TP cpu=1 phase=0 ops=1e9 mbps=4 gt=99", 1.0)  # exponent: rejected
    st.feed("src", "DQ TP cpu=1 phase=0 ops=5 mbps=4 gt=9 extra=1", 1.0)  # trailing field
    st.feed("src", "DQ VERIFY id=1 pages=10 bad=0 __import__('os')", 1.0)
    st.feed("dst", "DQ VERIFY id=2 pages=10 bad=3", 2.0)
    st.feed("dst", "x" * 10000, 2.0)
    assert [(s.vcpu, s.ops_per_s, s.mb_per_s) for s in st.samples] == [(1, 123.5, 4.0)]
    assert st.verifies == {2: (10, 3)}
    assert all(len(r) < 300 for r in st.raw)


def test_policy_plugins() -> None:
    assert {"none", "auto-converge", "dirty-limit", "dirty-quota"} <= set(available())
    assert make_policy("auto-converge", {"initial": 30}).params["initial"] == 30
    with pytest.raises(ScenarioError, match=r"^policy\.params\.increment:"):
        make_policy("auto-converge", {"increment": 0})
    with pytest.raises(ScenarioError, match=r"^policy\.params\.bogus:"):
        make_policy("none", {"bogus": 1})
    with pytest.raises(ScenarioError, match=r"^policy:"):
        make_policy("magic")


def test_integrity_verdicts() -> None:
    ok = Run._integrity({"side": "dst", "pages": 10, "bad": 0}, {"differing": 0})
    assert (ok["verdict"], ok["bad_pages"]) == ("ok", 0)
    dead = Run._integrity(None, {"pages": 10, "differing": 7, "first_pfns": []})
    assert (dead["verdict"], dead["bad_pages"]) == ("corrupt", 7)
    assert Run._integrity(None, None)["verdict"] == "error"
    assert Run._integrity({"side": "dst", "pages": 9, "bad": 1}, None)["verdict"] == "corrupt"


def test_comparison_table_renders() -> None:
    s = {
        "converged": False, "status": "cancelled", "total_time_s": 20.0, "downtime_ms": None,
        "bytes_sent": 2**20, "iterations": 3, "max_throttle_pct": 40,
        "vcpus": [{"vcpu": 0, "throughput_retained": 0.5, "runtime_pct": 60.0}],
        "integrity": {"checked": True, "bad_pages": 0, "verdict": "ok"}, "alive_on": "source",
    }  # fmt: skip
    table = comparison_table([{"policy": {"name": "auto-converge"}, "summary": s}])
    assert "auto-converge" in table and "0.50" in table and "ok (0 bad)" in table


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["run", "--scenario", "nope"], "scenario"),
        (["run", "--scenario", "skewed", "--policy", "magic"], "policy"),
        (["run", "--scenario", "skewed", "--param", "x"], "--param"),
        (["run", "--scenario", "skewed", "--link-mbit", "0"], "link_mbit"),
        (["link", "--rate-mbit", "0"], "--rate-mbit"),
        (["run"], "the following arguments are required: --scenario"),
    ],
)
def test_cli_bad_input_exit_2(argv: list[str], field: str) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "dq_agent.harness.cli", *argv], capture_output=True, text=True
    )
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr
    assert field in lines[0]
