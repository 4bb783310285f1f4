"""Every config field: a bad value gives ONE line naming the field and exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from agent_proc import DQ_AGENT

from dq_agent.agent import cli
from dq_agent.agent.config import Config, DomainPolicy, load

GOOD = """
[libvirt]
uri = "qemu:///system"
[metrics]
listen_address = "127.0.0.1"
port = 9177
host_label = "src-1"
[control]
backend = "auto"
tick_ms = 200
interval_ms = 10
deadline_ms = 3000
window = 5
convergence_factor = 0.5
pool_cap_budgets = 4
start_immediately = true
[log]
level = "info"
[domains.web]
weight = 3
vcpu_weights = [2, 1]
link = "uplink-a"
[domains.batch]
enabled = false
"""

# One bad value per field (several for the fiddly ones): (toml, field the line must name).
BAD = [
    ('[libvirt]\nuri = "not a uri"\n', "libvirt.uri"),
    ("[libvirt]\nuri = 1\n", "libvirt.uri"),
    ('[libvirt]\nurl = "qemu:///system"\n', "libvirt.url"),
    ('[metrics]\nlisten_address = "localhost:9"\n', "metrics.listen_address"),
    ("[metrics]\nport = 0\n", "metrics.port"),
    ("[metrics]\nport = 65536\n", "metrics.port"),
    ('[metrics]\nport = "9177"\n', "metrics.port"),
    ('[metrics]\nhost_label = "has space"\n', "metrics.host_label"),
    ('[control]\nbackend = "magic"\n', "control.backend"),
    ("[control]\ntick_ms = 49\n", "control.tick_ms"),
    ("[control]\ntick_ms = true\n", "control.tick_ms"),
    ("[control]\ninterval_ms = 0\n", "control.interval_ms"),
    ("[control]\ninterval_ms = 1001\n", "control.interval_ms"),
    ("[control]\ndeadline_ms = 50\n", "control.deadline_ms"),
    ("[control]\ntick_ms = 1000\ndeadline_ms = 1500\n", "control.deadline_ms"),
    ("[control]\nwindow = 0\n", "control.window"),
    ("[control]\nconvergence_factor = 0\n", "control.convergence_factor"),
    ("[control]\nconvergence_factor = 1.01\n", "control.convergence_factor"),
    ('[control]\nconvergence_factor = "half"\n', "control.convergence_factor"),
    ("[control]\npool_cap_budgets = -1\n", "control.pool_cap_budgets"),
    ("[control]\npool_cap_budgets = 101\n", "control.pool_cap_budgets"),
    ("[control]\nstart_immediately = 1\n", "control.start_immediately"),
    ("[control]\nspeed = 1\n", "control.speed"),
    ('[log]\nlevel = "loud"\n', "log.level"),
    ("[domains.web]\nweight = 0\n", "domains.web.weight"),
    ("[domains.web]\nweight = 1.5\n", "domains.web.weight"),
    ("[domains.web]\nvcpu_weights = [1, 1001]\n", "domains.web.vcpu_weights[1]"),
    ("[domains.web]\nvcpu_weights = 2\n", "domains.web.vcpu_weights"),
    ('[domains.web]\nenabled = "no"\n', "domains.web.enabled"),
    ('[domains.web]\nlink = "a b"\n', "domains.web.link"),
    ("[domains.web]\nopt_out = true\n", "domains.web.opt_out"),
    ('[domains."a/b"]\nweight = 1\n', "domains.a/b"),
    ("[domains]\nweb = 1\n", "domains.web"),
    ('metrics = "x"\n', "metrics"),
    ("[unknown]\n", "unknown"),
    ("[control\n", "file"),
]


def test_good_config_parses(tmp_path: Path) -> None:
    p = tmp_path / "agent.toml"
    p.write_text(GOOD)
    cfg = load(p)
    assert cfg.policy_for("web") == DomainPolicy(True, 3, (2, 1), "uplink-a")
    assert not cfg.policy_for("batch").enabled
    assert cfg.policy_for("other") == DomainPolicy()
    assert load(_write(tmp_path, "")) == Config()  # every field has a default


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_field_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str
) -> None:
    rc = cli.main(["check-config", str(_write(tmp_path, text))])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"dq-agent: config error: {field}: "), lines[0]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err.startswith("dq-agent: config error: file: cannot read")


def test_real_process_run_refuses_bad_config_without_starting(tmp_path: Path) -> None:
    """`dq-agent run` with a bad config: exit 2, one line, no traceback, no port bound."""
    p = _write(tmp_path, "[metrics]\nport = 99999\n")
    r = subprocess.run(
        [DQ_AGENT, "run", "--config", str(p)], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "dq-agent: config error: metrics.port: must be an integer 1..65535, got 99999"
    ]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_real_process_check_config_ok(tmp_path: Path) -> None:
    r = subprocess.run(
        [DQ_AGENT, "check-config", str(_write(tmp_path, GOOD))],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
