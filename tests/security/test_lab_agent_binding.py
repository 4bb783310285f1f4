"""The lab's agent config binds the metrics port to the host's management address.

Renders roles/dq_agent's agent.toml.j2 with real ansible-playbook for a lab host, using the
local inventory's group_vars and the role's own defaults (include_role loads them), then
reads the TOML back and checks it with `dq-agent check-config`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO, require

ANSIBLE = Path(os.environ.get("DQ_VENV", "/var/cache/dqlab/venv")) / "bin" / "ansible-playbook"
MGMT = "198.18.0.10"

PLAY = """
- hosts: dq-src
  gather_facts: false
  tasks:
    - name: Load the role's defaults (preflight only asserts)
      ansible.builtin.include_role:
        name: dq_agent
        tasks_from: preflight.yml
        public: true
    - name: Render the agent config as the role would
      ansible.builtin.copy:
        content: "{{{{ lookup('ansible.builtin.template', '{tpl}') }}}}"
        dest: "{out}"
        mode: "0600"
"""


def test_lab_agent_binds_management_address(tmp_path: Path) -> None:
    require(ANSIBLE.exists(), "ansible-playbook not in the venv")
    tpl = REPO / "roles/dq_agent/templates/etc/dq-agent/agent.toml.j2"
    gv = REPO / "inventory/local/group_vars"
    require(tpl.exists() and gv.exists(), "dq_agent role or local inventory not committed yet")
    inv = tmp_path / "inv"
    shutil.copytree(gv, inv / "group_vars")
    (inv / "hosts.yml").write_text(
        "all:\n  children:\n    dq_sources:\n      hosts:\n"
        f"        dq-src: {{ansible_host: {MGMT}, ansible_connection: local,"
        f" dq_migration_address: {MGMT}, ansible_python_interpreter: {sys.executable}}}\n"
    )
    out = tmp_path / "agent.toml"
    (tmp_path / "play.yml").write_text(PLAY.format(tpl=tpl, out=out))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_NOCOLOR="1")  # fmt: skip
    r = subprocess.run(
        [str(ANSIBLE), "-i", str(inv / "hosts.yml"), str(tmp_path / "play.yml")],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    cfg = tomllib.loads(out.read_text())
    addr = cfg["metrics"]["listen_address"]
    assert addr not in ("0.0.0.0", "::"), "the lab agent listens on every interface"
    # Prometheus (roles/prometheus) scrapes each agent at its management address.
    assert addr == MGMT, f"lab agent binds {addr}, Prometheus scrapes {MGMT}"
    chk = subprocess.run(
        [sys.executable, "-m", "dq_agent.agent.cli", "check-config", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert chk.returncode == 0, chk.stderr


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "CapabilityBoundingSet": "",
}


def _unit_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[", "{")) or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_agent_unit_is_sandboxed() -> None:
    unit = REPO / "roles/dq_agent/templates/etc/systemd/system/dq-agent.service.j2"
    require(unit.exists(), "dq-agent unit template not committed yet")
    s = _unit_settings(unit.read_text())
    missing = {k: v for k, v in HARDENING.items() if v not in s.get(k, [])}
    assert not missing, f"hardening missing or weakened: {missing}"
    fam = " ".join(s.get("RestrictAddressFamilies", []))
    assert fam and "AF_PACKET" not in fam and "AF_NETLINK" not in fam, fam
    assert "any" in " ".join(s.get("IPAddressDeny", [])), "the unit must deny by default"
    assert not any("0.0.0.0/0" in v or v == "any" for v in s.get("IPAddressAllow", []))


def test_systemd_analyze_security_score() -> None:
    """systemd's own review of the rendered unit: exposure must stay low (<= 4.0)."""
    require(shutil.which("systemd-analyze") is not None, "systemd-analyze missing")
    unit = REPO / "roles/dq_agent/templates/etc/systemd/system/dq-agent.service.j2"
    require(unit.exists(), "dq-agent unit template not committed yet")
    text = unit.read_text()
    for var, val in {
        "{{ ansible_managed }}": "managed",
        "{{ dq_agent_bin }}": "/opt/dq-agent/venv/bin/dq-agent",
        "{{ dq_agent_config_path }}": "/etc/dq-agent/agent.toml",
        "{{ dq_agent_watchdog_sec }}": "10",
        "{{ dq_agent_ip_allow | join(' ') }}": "198.18.0.0/15",
    }.items():
        text = text.replace(var, val)
    assert "{{" not in text, "unrendered variable in the unit"
    d = Path(os.environ.get("TMPDIR", "/tmp")) / f"dq-unit-{os.getpid()}"
    d.mkdir(exist_ok=True)
    try:
        (d / "dq-agent.service").write_text(text)
        argv = ["systemd-analyze", "security", "--offline=yes", "--no-pager"]
        r = subprocess.run(
            [*argv, str(d / "dq-agent.service")], capture_output=True, text=True, timeout=60
        )
    finally:
        shutil.rmtree(d, ignore_errors=True)
    require("--offline" not in r.stderr, "systemd-analyze here has no --offline")
    line = [ln for ln in r.stdout.splitlines() if "Overall exposure level" in ln]
    assert line, r.stdout[-500:] + r.stderr[-500:]
    score = float(line[0].split("level for")[1].split(":")[1].split()[0])
    assert score <= 4.0, line[0]
