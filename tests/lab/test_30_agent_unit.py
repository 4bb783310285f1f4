"""The dq-agent site.yml deployed on dq-src, as systemd runs it after the lab's migration:
a sandboxed Type=notify unit (active = READY=1 came after libvirt connected and the port
bound), watchdog armed, never restarted, serving metrics on the management address only."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from tests.lab.labhosts import ADDRESS, ssh

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_agent_unit_is_ready_watched_and_never_restarted(provisioned_lab: object) -> None:
    state = ssh(
        "dq-src",
        "systemctl",
        "show",
        "dq-agent",
        "-p",
        "ActiveState,Type,NRestarts,WatchdogUSec,UnitFileState",
    ).stdout
    for want in ("ActiveState=active", "Type=notify", "NRestarts=0", "WatchdogUSec=10s"):
        assert want in state, state
    assert "UnitFileState=enabled" in state, state
    journal = ssh("dq-src", "journalctl", "-u", "dq-agent", "-o", "cat", "--no-pager").stdout
    assert "msg=ready" in journal, journal[-2000:]


def test_agent_serves_metrics_on_the_management_address_only(provisioned_lab: object) -> None:
    src = ADDRESS["dq-src"]
    with urllib.request.urlopen(f"http://{src}:9177/metrics", timeout=5) as r:
        body = r.read().decode()
    assert 'dq_agent_up{host="dq-src"} 1.0' in body, body[:2000]
    assert 'dq_agent_libvirt_connected{host="dq-src"} 1.0' in body, body[:2000]
    listening = ssh("dq-src", "ss", "-Htln", "sport = :9177").stdout
    local = {ln.split()[3] for ln in listening.splitlines() if ln.strip()}
    assert local == {f"{src}:9177"}, listening
    # Nothing but /metrics: no control endpoint.
    for path in ("/", "/quota", "/api/v1/set"):
        try:
            urllib.request.urlopen(f"http://{src}:9177{path}", timeout=5).close()
            code = 200
        except urllib.error.HTTPError as e:
            code = e.code
        assert code == 404, (path, code)
