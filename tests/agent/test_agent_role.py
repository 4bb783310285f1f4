"""roles/dq_agent under real ansible-playbook on localhost (configure phase, no service).

The rendered agent.toml passes `dq-agent check-config` (the role's `validate:`), the unit
passes `systemd-analyze verify`, and bad inventory values are refused at role start
(argument_specs) or by the validate step, naming the field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from agent_proc import DQ_AGENT
from conftest import REPO, require

from dq_agent.agent.config import load

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def _play(tmp: Path, extra: dict[str, object]) -> subprocess.CompletedProcess[str]:
    require(Path(ANSIBLE_PLAYBOOK).exists(), "ansible-playbook missing from the venv")
    (tmp / "play.yml").write_text(
        json.dumps(
            [
                {
                    "name": "dq_agent role test",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "roles": [{"role": str(REPO / "roles" / "dq_agent")}],
                }
            ]
        )
    )
    vars_ = {
        "dq_agent_bin": DQ_AGENT,
        "dq_agent_config_path": str(tmp / "etc" / "agent.toml"),
        "dq_agent_unit_path": str(tmp / "etc" / "dq-agent.service"),
        "dq_agent_manage_service": False,
        **extra,
    }
    (tmp / "vars.json").write_text(json.dumps(vars_))
    env = dict(
        os.environ,
        ANSIBLE_LOCAL_TEMP=str(tmp / "atmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    return subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            "localhost,",
            "-c",
            "local",
            "--tags",
            "dq_agent_preflight,dq_agent_configure",
            str(tmp / "play.yml"),
            "-e",
            f"@{tmp / 'vars.json'}",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_renders_valid_config_and_unit(tmp_path: Path) -> None:
    r = _play(
        tmp_path,
        {
            "dq_agent_backend": "dirty-quota",
            "dq_agent_domains": {
                "web": {"weight": 3, "vcpu_weights": [2, 1], "link": "uplink"},
                "batch": {"enabled": False},
            },
        },
    )
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = load(tmp_path / "etc" / "agent.toml")
    assert cfg.backend == "dirty-quota" and cfg.policy_for("web").vcpu_weights == (2, 1)
    assert not cfg.policy_for("batch").enabled and cfg.host_label == "localhost"
    unit = (tmp_path / "etc" / "dq-agent.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=10s" in unit and "Restart=on-failure" in unit
    assert (tmp_path / "etc" / "agent.toml").stat().st_mode & 0o777 == 0o644
    again = _play(
        tmp_path,
        {
            "dq_agent_backend": "dirty-quota",
            "dq_agent_domains": {
                "web": {"weight": 3, "vcpu_weights": [2, 1], "link": "uplink"},
                "batch": {"enabled": False},
            },
        },
    )
    assert "changed=0" in again.stdout, again.stdout  # idempotent


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze missing")
    assert analyze is not None
    assert _play(tmp_path, {}).returncode == 0
    unit = tmp_path / "etc" / "dq-agent.service"
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (r.stdout + r.stderr).splitlines() if "dq-agent.service" in ln]
    assert not problems, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"dq_agent_backend": "magic"}, "dq_agent_backend"),
        ({"dq_agent_port": "not-a-port"}, "dq_agent_port"),
        ({"dq_agent_deadline_ms": 100, "dq_agent_tick_ms": 200}, "dq_agent_deadline_ms"),
        ({"dq_agent_convergence_factor": 2.0}, "control.convergence_factor"),
        ({"dq_agent_domains": {"web": {"weight": 0}}}, "domains.web.weight"),
    ],
)
def test_bad_inventory_refused_naming_the_field(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    r = _play(tmp_path, extra)
    assert r.returncode != 0
    assert message in r.stdout + r.stderr, r.stdout + r.stderr
    assert not (tmp_path / "etc" / "agent.toml").exists()  # nothing half-written
