"""dq-sim scenario files and flags: refused with one line naming the field, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from badinput_cli import assert_refused, run_module, snapshot

SIM = "dq_agent.sim"

BASE = """name = "t"
ram = "64 MiB"
[link]
rate = "100 Mbit/s"
[[vcpus]]
rate = "20 MB/s"
working_set = "8 MiB"
"""

# (replace-or-append edit on the base scenario, field the error must name)
BAD_SCENARIOS = [
    ('name = ""\nram = "64 MiB"\n[link]\nrate = "1 Mbit/s"\n[[vcpus]]\nrate = 1\n', "name"),
    (BASE.replace('ram = "64 MiB"', 'ram = "64 furlongs"'), "ram"),
    (BASE.replace('ram = "64 MiB"', "ram = 100"), "ram"),
    (BASE.replace('ram = "64 MiB"', "ram = -1"), "ram"),
    (BASE.replace('rate = "100 Mbit/s"', 'rate = "0 Mbit/s"'), "link.rate"),
    (BASE.replace('rate = "100 Mbit/s"', 'rate = "fast"'), "link.rate"),
    (BASE.replace('rate = "100 Mbit/s"', 'rate = "100 Mbit/s"\nspeed = 1'), "link.speed"),
    (BASE.replace('working_set = "8 MiB"', 'working_set = "1 GiB"'), "vcpus[0].working_set"),
    (BASE.replace('rate = "20 MB/s"', 'rate = "20 MB/s"\ncount = 0'), "vcpus[0].count"),
    (BASE.replace('rate = "20 MB/s"', 'rate = "20 MB/s"\ncount = 5000'), "vcpus[0].count"),
    (BASE.replace('rate = "20 MB/s"', 'rate = "20 MB/s"\npattern = "zigzag"'), "vcpus[0].pattern"),
    (BASE.replace('rate = "20 MB/s"', 'rate = "20 MB/s"\nwrite_share = 2'), "vcpus[0].write_share"),
    (
        BASE.replace('rate = "20 MB/s"', 'rate = "20 MB/s"\nwrite_share = nan'),
        "vcpus[0].write_share",
    ),
    (BASE.replace('rate = "20 MB/s"', 'rate = "-5 MB/s"'), "vcpus[0].rate"),
    (BASE + "[[vcpus.phases]]\nat_s = 5\n[[vcpus.phases]]\nat_s = 1\n", "vcpus[0].phases[1].at_s"),
    (BASE + "timeout_s = 0\n", "vcpus[0].timeout_s"),
    (BASE.replace('name = "t"', 'name = "t"\ntimeout_s = 0'), "timeout_s"),
    (BASE.replace('name = "t"', 'name = "t"\ndowntime_limit_ms = inf'), "downtime_limit_ms"),
    (BASE.replace('name = "t"', 'name = "t"\ncolour = "red"'), "colour"),
    (BASE.replace('name = "t"', 'name = "t"\npolicies = 3'), "policies"),
    (BASE + "[policies.warp]\nx = 1\n", "policies.warp"),
    (BASE + "[policies.dirty-quota]\nbogus = 1\n", "dirty-quota.bogus"),
    ('name = "t"\n', "ram"),
    ("[[[\n", "not valid"),
]


@pytest.mark.parametrize(("text", "field"), BAD_SCENARIOS, ids=[f for _, f in BAD_SCENARIOS])
def test_check_refuses_scenario(tmp_path: Path, text: str, field: str) -> None:
    sc = tmp_path / "bad.toml"
    sc.write_text(text)
    before = snapshot(tmp_path)
    assert_refused(run_module(SIM, "check", str(sc)), field)
    out_json = tmp_path / "out.json"
    assert_refused(run_module(SIM, "run", str(sc), "--json", str(out_json)), field)
    assert snapshot(tmp_path) == before


def test_good_scenario_passes(tmp_path: Path) -> None:
    sc = tmp_path / "good.toml"
    sc.write_text(BASE)
    out = run_module(SIM, "check", str(sc))
    assert out.rc == 0, out.stderr


def test_json_scenario_errors(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text('{"name": "x", "ram": "64 MiB", "link": {"rate": "1 Mbit/s"}, "vcpus": {}}')
    assert_refused(run_module(SIM, "check", str(p)), "vcpus")
    p.write_text('{"name": "x",')
    assert_refused(run_module(SIM, "check", str(p)), "not valid json")
    p.write_text("[1, 2]")
    assert_refused(run_module(SIM, "check", str(p)), "must be a table")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["run", "skewed", "--policy", "warp"], "--policy"),
        (["run", "skewed", "--param", "x"], "--param"),
        (["run", "skewed", "--param", "warp.x=1"], "warp"),
        (["run", "skewed", "--param", "dirty-quota.bogus=1"], "dirty-quota.bogus"),
        (
            ["run", "skewed", "--policy", "dirty-quota", "--param", "dirty-quota.weights=[1]"],
            "dirty-quota.weights",
        ),
        (["run", "no-such-scenario"], "no-such-scenario"),
        (["frobnicate"], "frobnicate"),
        ([], "cmd"),
    ],
)
def test_bad_flags(tmp_path: Path, args: list[str], field: str) -> None:
    assert_refused(run_module(SIM, *args, cwd=tmp_path), field)
    assert snapshot(tmp_path) == set()


def test_compare_bad_param_writes_nothing(tmp_path: Path) -> None:
    """A --param that only fails for the last policy must not leave the earlier results.

    Bad input = no partial state: all runs should be validated before the first file.
    """
    out_dir = tmp_path / "out"
    res = run_module(
        SIM,
        "compare",
        "skewed",
        "--json-dir",
        str(out_dir),
        "--param",
        "dirty-quota.weights=[1]",
    )
    assert_refused(res, "dirty-quota.weights")
    assert not out_dir.exists() or not any(out_dir.iterdir()), sorted(
        p.name for p in out_dir.iterdir()
    )
