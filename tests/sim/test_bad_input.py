"""Every scenario field, broken: one stderr line naming the field, exit 2, no output."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dq_agent.sim.cli import main

GOOD: dict[str, Any] = {
    "name": "t",
    "description": "test",
    "ram": "1 GiB",
    "downtime_limit_ms": 300,
    "timeout_s": 60,
    "bitmap_sync_ms_per_gib": 0.25,
    "link": {"rate": "1 Gbit/s", "changes": [{"at_s": 5, "rate": "500 Mbit/s"}]},
    "vcpus": [
        {
            "rate": "100 MB/s",
            "write_share": 1.0,
            "working_set": "256 MiB",
            "pattern": "random",
            "count": 2,
            "ops_per_s": 1000,
            "phases": [{"at_s": 3, "rate": "10 MB/s", "write_share": 0.5, "working_set": "1 MiB"}],
        }
    ],
    "policies": {"dirty-quota": {"interval_ms": 10}},
    "reference": {"source": "paper", "total_s": {"auto-converge": 60.4}},
}


def _set(doc: dict[str, Any], path: list[Any], value: Any) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()

CASES = [
    (["name"], "", "name"),
    (["name"], _DELETE, "name"),
    (["description"], 5, "description"),
    (["ram"], "lots", "ram"),
    (["ram"], 0, "ram"),
    (["ram"], _DELETE, "ram"),
    (["downtime_limit_ms"], -1, "downtime_limit_ms"),
    (["downtime_limit_ms"], "300", "downtime_limit_ms"),
    (["timeout_s"], 0, "timeout_s"),
    (["bitmap_sync_ms_per_gib"], -2, "bitmap_sync_ms_per_gib"),
    (["surprise"], 1, "surprise"),
    (["link"], "1 Gbit/s", "link"),
    (["link", "rate"], "1 Gbit", "link.rate"),
    (["link", "rate"], 0, "link.rate"),
    (["link", "rate"], _DELETE, "link.rate"),
    (["link", "speed"], 1, "link.speed"),
    (["link", "changes"], {"at_s": 1}, "link.changes"),
    (["link", "changes", 0, "at_s"], -1, "link.changes[0].at_s"),
    (["link", "changes", 0, "rate"], "x", "link.changes[0].rate"),
    (["vcpus"], [], "vcpus"),
    (["vcpus", 0, "rate"], "-5 MB/s", "vcpus[0].rate"),
    (["vcpus", 0, "rate"], _DELETE, "vcpus[0].rate"),
    (["vcpus", 0, "write_share"], 1.5, "vcpus[0].write_share"),
    (["vcpus", 0, "working_set"], "2 GiB", "vcpus[0].working_set"),
    (["vcpus", 0, "working_set"], 0, "vcpus[0].working_set"),
    (["vcpus", 0, "pattern"], "zigzag", "vcpus[0].pattern"),
    (["vcpus", 0, "count"], 0, "vcpus[0].count"),
    (["vcpus", 0, "count"], 2.5, "vcpus[0].count"),
    (["vcpus", 0, "ops_per_s"], -1, "vcpus[0].ops_per_s"),
    (["vcpus", 0, "colour"], "red", "vcpus[0].colour"),
    (["vcpus", 0, "phases"], "soon", "vcpus[0].phases"),
    (["vcpus", 0, "phases", 0, "at_s"], _DELETE, "vcpus[0].phases[0].at_s"),
    (["vcpus", 0, "phases", 0, "rate"], "x", "vcpus[0].phases[0].rate"),
    (["vcpus", 0, "phases", 0, "write_share"], -0.1, "vcpus[0].phases[0].write_share"),
    (["vcpus", 0, "phases", 0, "working_set"], "9 GiB", "vcpus[0].phases[0].working_set"),
    (["policies"], 3, "policies"),
    (["policies", "dirty-quota", "interval_ms"], 0, "policies.dirty-quota.interval_ms"),
    (["policies", "dirty-quota", "bogus"], 1, "policies.dirty-quota.bogus"),
    (["policies", "dirty-quota", "weights"], [1], "policies.dirty-quota.weights"),
    (["policies", "dirty-quota", "start_immediately"], "yes", "start_immediately"),
    (["policies", "auto-converge"], {"max_cpu_throttle": 100}, "max_cpu_throttle"),
    (["policies", "warp"], {}, "policies.warp"),
    (["reference"], [], "reference"),
    (["reference", "source"], 1, "reference.source"),
    (["reference", "year"], 2022, "reference.year"),
    (["reference", "total_s", "auto-converge"], -1, "reference.total_s.auto-converge"),
    (["reference", "total_s", "warp"], 5, "reference.total_s.warp"),
]


def _run(tmp_path: Path, doc: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(doc))
    rc = main(["run", str(f), "--policy", "none"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_good_document_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(tmp_path, GOOD, capsys)
    assert rc == 0 and err == "" and "t " in out


@pytest.mark.parametrize(
    ("path", "value", "field"), CASES, ids=[c[2] + "-" + str(i) for i, c in enumerate(CASES)]
)
def test_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: list[Any], value: Any, field: str
) -> None:
    doc = copy.deepcopy(GOOD)
    _set(doc, path, value)
    rc, out, err = _run(tmp_path, doc, capsys)
    assert rc == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert field in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "needle"),
    [("name = ", "not valid"), ("[[[", "not valid")],
)
def test_unparseable_toml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    f = tmp_path / "x.toml"
    f.write_text(text)
    assert main(["run", str(f)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "/nonexistent/s.toml"], "cannot read"),
        (["run", "skewed", "--param", "dirty-quota.interval_ms=0"], "interval_ms"),
        (["run", "skewed", "--param", "nope"], "POLICY.KEY=VALUE"),
        (["run", "skewed", "--param", "warp.x=1"], "warp"),
        (["run", "skewed", "--policy", "warp"], "warp"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_command_line(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    assert main(args) == 2
    cap = capsys.readouterr()
    assert needle in cap.err and len(cap.err.strip().splitlines()) == 1
    assert cap.out == ""


def test_compare_checks_params_before_printing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "skewed", "--param", "auto-converge.cpu_throttle_initial=0"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "cpu_throttle_initial" in cap.err


BAD_PARAMS = [
    ("auto-converge.throttle_trigger_threshold", "0"),
    ("auto-converge.cpu_throttle_initial", "100"),
    ("auto-converge.cpu_throttle_increment", "0"),
    ("auto-converge.max_cpu_throttle", "100"),
    ("auto-converge.dirty_sync_timer_s", "-1"),
    ("dirty-limit.throttle_trigger_threshold", "101"),
    ("dirty-limit.vcpu_dirty_limit", "0"),
    ("dirty-quota.interval_ms", "0"),
    ("dirty-quota.convergence_factor", "1.5"),
    ("dirty-quota.start_immediately", "1"),
    ("dirty-quota.window_intervals", "0"),
    ("dirty-quota.weights", "[1, 2]"),
    ("dirty-quota.weights", "[0, 1, 1, 1]"),
    ("dirty-quota.hold_while_exhausted", '"no"'),
    ("none.anything", "1"),
]


@pytest.mark.parametrize(("key", "value"), BAD_PARAMS)
def test_every_policy_parameter_is_checked(
    capsys: pytest.CaptureFixture[str], key: str, value: str
) -> None:
    assert main(["run", "skewed", "--param", f"{key}={value}"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], cap.err


def test_scenario_root_must_be_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(tmp_path, [1, 2], capsys)
    assert rc == 2 and out == "" and "(top level)" in err
