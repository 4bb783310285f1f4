"""dq-sim end to end: shipped scenarios, the comparison table, result files, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dq_agent.schema import problems
from dq_agent.sim.cli import main
from dq_agent.sim.scenario import load_scenario, shipped_names

REQUIRED = {"v10-8g-2t", "v10-48g-8t", "v10-512g-32t", "v10-32g-6t", "skewed", "mixed-rw"}


def test_shipped_scenarios_are_there_and_load() -> None:
    assert set(shipped_names()) >= REQUIRED
    for name in shipped_names():
        sc = load_scenario(name)
        assert sc.name == name


def test_compare_prints_a_row_per_scenario_and_policy_and_valid_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", "--json-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:2] == ["scenario", "policy"]
    assert len(out) == 1 + 5 * len(shipped_names())
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 5 * len(shipped_names())
    for f in files:
        doc = json.loads(f.read_text())
        assert problems(doc) == [], f.name
        assert doc["kind"] == "simulated"


def test_run_writes_one_file_for_one_policy(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["run", "skewed", "--policy", "dirty-quota", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["policy"]["name"] == "dirty-quota"
    assert doc["summary"]["converged"] is True
    assert doc["progress"][-1]["status"] == "completed"
    assert {r["vcpu"] for r in doc["guest_timeline"]} == {0, 1, 2, 3}


def test_param_override_reaches_the_policy(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["run", "v10-8g-2t", "--policy", "dirty-quota", "--json", str(out)]
    assert main([*args, "--param", "dirty-quota.start_immediately=true"]) == 0
    fast = json.loads(out.read_text())
    assert fast["policy"]["params"]["start_immediately"] is True
    assert main(args) == 0
    slow = json.loads(out.read_text())
    assert fast["summary"]["total_time_s"] < slow["summary"]["total_time_s"]


def test_console_script_is_declared() -> None:
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert eps.get("dq-sim") == "dq_agent.sim.cli:main"


def test_bad_file_in_a_subprocess_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nram = "1 GiB"\n[link]\nrate = "fast"\n[[vcpus]]\nrate = 1\n')
    r = subprocess.run(
        [sys.executable, "-m", "dq_agent.sim", "run", str(bad)], capture_output=True, text=True
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "link.rate" in lines[0] and "Traceback" not in r.stderr
    assert r.stdout == ""
