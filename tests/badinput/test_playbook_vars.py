"""Playbook variables: a bad value is refused by the role's argument_specs or preflight,
before any task that changes a host (real ansible-playbook, localhost, --check).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, require

ANSIBLE = Path(os.environ.get("DQ_VENV", "/var/cache/dqlab/venv")) / "bin" / "ansible-playbook"
PLAY = "- hosts: all\n  gather_facts: false\n  roles:\n    - role: {role}\n"


def play(tmp_path: Path, role: str, extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    require(ANSIBLE.exists(), "ansible-playbook not in the venv")
    p = tmp_path / "play.yml"
    p.write_text(PLAY.format(role=role))
    ev = tmp_path / "extra.yml"
    ev.write_text(yaml.safe_dump(extra))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(REPO / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    # --check: even if a bad value slipped through, nothing on this machine changes.
    return subprocess.run(
        [str(ANSIBLE), "-i", "localhost,", "-c", "local", "--check", str(p), "-e", f"@{ev}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )


def _bad_value(spec: dict[str, Any]) -> Any | None:
    if spec.get("choices"):
        return "no-such-choice"
    # Only types Ansible will not coerce (a scalar silently becomes a one-item list).
    return {"int": "not-a-number", "bool": "maybe", "float": "fast"}.get(str(spec.get("type")))


def type_cases() -> list[tuple[str, str, Any]]:
    """One mistyped variable per role, picked from its own argument_specs."""
    out = []
    for specs in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = specs.parent.parent.name
        opts = (yaml.safe_load(specs.read_text())["argument_specs"]["main"]).get("options", {})
        for name, spec in opts.items():
            bad = _bad_value(spec or {})
            if bad is not None:
                out.append((role, name, bad))
                break
    return out


TYPE_CASES = type_cases()


def failed_task(out: str) -> str:
    """The name of the task that failed (the TASK header before the first failure)."""
    last = ""
    for line in out.splitlines():
        m = re.match(r"TASK \[(.*)\]", line)
        if m:
            last = m[1]
        if line.startswith(("fatal:", "[ERROR]: Task failed")) or "FAILED!" in line:
            return last
    return last


@pytest.mark.parametrize(
    ("role", "var", "bad"), TYPE_CASES, ids=[f"{r}.{v}" for r, v, _ in TYPE_CASES]
)
def test_mistyped_variable_refused_by_argument_specs(
    tmp_path: Path, role: str, var: str, bad: Any
) -> None:
    r = play(tmp_path, role, {var: bad})
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-2000:]
    assert "Traceback" not in out
    assert "Validating arguments against arg spec" in failed_task(out), failed_task(out)
    assert var in out
    assert re.search(r"changed=0\b", out), out[-500:]


# Values of the right type but wrong range/shape: argument_specs cannot say "1..65535", so
# the role's preflight must refuse them, before installing anything.
AGENT_RANGE_CASES = [
    ({"dq_agent_port": 70000}, "dq_agent_port"),
    ({"dq_agent_listen_address": "not-an-ip"}, "dq_agent_listen_address"),
    ({"dq_agent_domains": {"bad name": {}}}, "dq_agent_domains"),
]


@pytest.mark.parametrize(("extra", "var"), AGENT_RANGE_CASES, ids=[v for _, v in AGENT_RANGE_CASES])
def test_agent_out_of_range_refused_before_install(
    tmp_path: Path, extra: dict[str, Any], var: str
) -> None:
    r = play(tmp_path, "dq_agent", extra)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    task = failed_task(out)
    install_tasks = [
        t.get("name", "")
        for t in yaml.safe_load((REPO / "roles/dq_agent/tasks/install.yml").read_text()) or []
    ]
    assert not any(name and name in task for name in install_tasks), (
        f"{var}: refused only at install task {task!r} (after preflight let it through)"
    )
    assert var in out, f"{var} not named; failed at {task!r}"
