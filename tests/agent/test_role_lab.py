"""roles/dq_agent on a real nspawn lab host (tools/lab.sh up): systemd runs the unit.

A wheel of the committed dq_agent is built, the role installs it on dq-src next to
Debian's python3-libvirt / python3-prometheus-client, and systemd starts the sandboxed
Type=notify unit: `active` proves READY=1 came after libvirt connected and the port bound.
Deployed with backend `observe` so it never throttles other people's lab migrations, and
stopped + disabled at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = [pytest.mark.lab, pytest.mark.slow]
INVENTORY = REPO / "inventory" / "local" / "hosts.yml"
LAB = Path(os.environ.get("DQ_CACHE", "/var/cache/dqlab")) / "lab"
VENV_BIN = Path(sys.executable).parent


def _ssh(addr: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-q",
            "-i",
            str(LAB / "id_ed25519"),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=3",
            "-o",
            f"UserKnownHostsFile={LAB / 'known_hosts'}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"root@{addr}",
            *cmd,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wheel(tmp: Path) -> Path:
    """Build from the committed tree (git archive), never from the shared working tree."""
    src = tmp / "src"
    src.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "HEAD", "dq_agent"], capture_output=True, check=True
    ).stdout
    (tmp / "src.tar").write_bytes(archive)
    with tarfile.open(tmp / "src.tar") as t:
        t.extractall(src, filter="data")
    out = tmp / "wheel"
    subprocess.run(
        [str(VENV_BIN / "pip"), "wheel", "--no-deps", "-q", "-w", str(out), str(src / "dq_agent")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("dq_agent-*.whl"))


def _play(tmp: Path, extra: dict[str, object]) -> subprocess.CompletedProcess[str]:
    (tmp / "play.yml").write_text(
        json.dumps(
            [
                {
                    "name": "dq_agent on the lab sources",
                    "hosts": "dq_sources",
                    "gather_facts": False,
                    "roles": [{"role": str(REPO / "roles" / "dq_agent")}],
                }
            ]
        )
    )
    (tmp / "vars.json").write_text(json.dumps(extra))
    env = dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCAL_TEMP=str(tmp / "atmp"),
        PATH=f"{VENV_BIN}:{os.environ['PATH']}",
    )
    if (REPO / "ansible.cfg").exists():
        env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            str(INVENTORY),
            str(tmp / "play.yml"),
            "-e",
            f"@{tmp / 'vars.json'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=REPO,
    )


def _deployed_by_site(addr: str) -> bool:
    return _ssh(addr, "systemctl", "is-enabled", "dq-agent").stdout.strip() == "enabled"


@pytest.fixture
def src_host() -> Iterator[str]:
    # A plain skip even in CI: this test uses a lab someone else brought up and never
    # boots one itself (tests/ansible/test_local_lab.py owns the lab's life cycle, and
    # covers this role in CI once site.yml includes it).
    if not INVENTORY.exists():
        pytest.skip("local lab not up (tools/lab.sh up)")
    addr = "198.18.0.10"
    if _ssh(addr, "true").returncode != 0:
        pytest.skip("lab host dq-src not reachable")
    if _deployed_by_site(addr):
        # playbooks/site.yml deployed it: check it in place, never redeploy or stop it.
        yield addr
        return
    yield addr
    _ssh(addr, "systemctl", "disable", "--now", "dq-agent")


def _check_running_unit(addr: str, scrape_from_host: bool) -> None:
    state = _ssh(
        addr,
        "systemctl",
        "show",
        "dq-agent",
        "-p",
        "ActiveState,SubState,Type,NRestarts,WatchdogUSec",
    )
    assert "ActiveState=active" in state.stdout and "Type=notify" in state.stdout, state.stdout
    assert "NRestarts=0" in state.stdout and "WatchdogUSec=10s" in state.stdout, state.stdout
    # From the host itself: site.yml binds the default 127.0.0.1.
    url = f"http://{addr if scrape_from_host else '127.0.0.1'}:9177/metrics"
    code = f"import urllib.request as u; print(u.urlopen('{url}', timeout=5).read().decode())"
    body = _ssh(addr, "python3", "-c", f'"{code}"').stdout
    assert 'dq_agent_up{host="dq-src"} 1.0' in body, body[:2000]
    assert 'dq_agent_libvirt_connected{host="dq-src"} 1.0' in body, body[:2000]
    journal = _ssh(addr, "journalctl", "-u", "dq-agent", "-o", "cat", "--no-pager")
    assert "msg=ready" in journal.stdout, journal.stdout[-2000:]


def test_agent_as_deployed_by_site_yml(src_host: str) -> None:
    """The agent site.yml put on dq-src runs under systemd: READY (active), watchdog,
    no restarts, libvirt connected."""
    if not _deployed_by_site(src_host):
        pytest.skip("site.yml has not deployed dq-agent on this lab")
    _check_running_unit(src_host, scrape_from_host=False)


def test_role_installs_and_systemd_runs_the_agent(src_host: str, tmp_path: Path) -> None:
    if _deployed_by_site(src_host):
        pytest.skip("site.yml owns dq-agent on this lab (checked in place above)")
    extra = {
        "dq_agent_wheel": str(_wheel(tmp_path)),
        "dq_agent_backend": "observe",
        "dq_agent_listen_address": src_host,
    }
    first = _play(tmp_path, extra)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    state = _ssh(
        src_host,
        "systemctl",
        "show",
        "dq-agent",
        "-p",
        "ActiveState,SubState,Type,NRestarts,WatchdogUSec",
    )
    assert "ActiveState=active" in state.stdout and "Type=notify" in state.stdout, state.stdout
    assert "NRestarts=0" in state.stdout and "WatchdogUSec=10s" in state.stdout, state.stdout
    with urllib.request.urlopen(f"http://{src_host}:9177/metrics", timeout=5) as r:
        body = r.read().decode()
    assert 'dq_agent_up{host="dq-src"} 1.0' in body, body[:2000]
    assert 'dq_agent_libvirt_connected{host="dq-src"} 1.0' in body
    journal = _ssh(src_host, "journalctl", "-u", "dq-agent", "-o", "cat", "--no-pager")
    assert "msg=ready" in journal.stdout, journal.stdout[-2000:]
    again = _play(tmp_path, extra)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    sec = _ssh(src_host, "systemd-analyze", "security", "--no-pager", "dq-agent")
    print("\n" + "\n".join(sec.stdout.splitlines()[-1:]))
