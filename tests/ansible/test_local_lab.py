"""The real local lab, end to end: bring-up, site.yml, idempotent re-run (changed=0), one
scripted migration through libvirt between the two nspawn hosts with a verified guest,
and a tear-down that leaves nothing behind. About 6-8 minutes warm."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.ansible.ansible_run import CACHE, REPO, playbook, recap
from tests.conftest import artifact, require

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB = REPO / "tools" / "lab.sh"
HOSTS = ("dq-src", "dq-dst", "dq-mon")
SITE_ARGS = ("-e", "dq_site_kernel=false")


def lab(cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAB), cmd], capture_output=True, text=True, timeout=900)


def leftovers() -> list[str]:
    """Everything the lab creates, if any of it still exists."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [
        f"netns {h}" for h in HOSTS if any(ln.split()[0] == h for ln in netns.splitlines() if ln)
    ]
    if subprocess.run(["ip", "link", "show", "dqbr0"], capture_output=True).returncode == 0:
        found.append("bridge dqbr0")
    for h in HOSTS:
        if subprocess.run(["ip", "link", "show", f"v-{h}"], capture_output=True).returncode == 0:
            found.append(f"veth v-{h}")
    procs = subprocess.run(["pgrep", "-a", "systemd-nspawn"], capture_output=True, text=True).stdout
    found += [f"nspawn {ln}" for ln in procs.splitlines() if "/run/netns/dq-" in ln]
    mounts = Path("/proc/mounts").read_text()
    found += [
        f"mount {ln.split()[1]}"
        for ln in mounts.splitlines()
        if "/run/systemd/nspawn" in ln or str(CACHE / "lab") in ln
    ]
    found += [f"machine {h}" for h in HOSTS if (CACHE / "lab" / "machines" / h).exists()]
    if (REPO / "inventory" / "local" / "hosts.yml").exists():
        found.append("inventory/local/hosts.yml")
    return found


@pytest.fixture(scope="module")
def local_lab():
    for tool in ("systemd-nspawn", "debootstrap", "apt-cacher-ng"):
        require(
            shutil.which(tool) is not None or Path(f"/usr/sbin/{tool}").exists(),
            f"{tool} not installed (tools/deps/apt-ansible.txt; run ./dqlab setup)",
        )
    require(
        artifact("appliance") is not None, "guest appliance not built (tools/build-appliance.sh)"
    )
    require(artifact("rootfs") is not None, "lab base image not built (tools/build-rootfs.sh)")
    assert lab("down").returncode == 0
    up = lab("up")
    try:
        assert up.returncode == 0, up.stderr
        yield
    finally:
        down = lab("down")
        assert down.returncode == 0, down.stderr
        assert leftovers() == []


def test_site_provisions_and_is_idempotent(local_lab: None) -> None:
    # The kernel role is left out here: its emulated-host boot is tests/kernel/test_role.py's
    # job, and its build (tens of minutes cold) is not this test's to wait for.
    first = playbook("-i", "inventory/local", "playbooks/site.yml", *SITE_ARGS)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
    second = playbook("-i", "inventory/local", "playbooks/site.yml", *SITE_ARGS)
    assert second.returncode == 0, second.stdout[-4000:]
    counts = recap(second.stdout)
    assert {"dq-src", "dq-dst"} <= set(counts), second.stdout[-2000:]
    changed = {h: c["changed"] for h, c in counts.items() if c["changed"]}
    assert changed == {}, "second site.yml run changed something:\n" + "\n".join(
        ln for ln in second.stdout.splitlines() if ln.startswith("changed:")
    )


def test_scripted_migration_with_verified_guest(local_lab: None) -> None:
    # The harness scenario that converges over 100 Mbit/s: two vCPUs dirtying 2 MB/s each.
    out = playbook(
        "-i",
        "inventory/local",
        "playbooks/migrate.yml",
        "-e",
        json.dumps(
            {
                "dq_scenario_workload": "uniform",
                "dq_scenario_policies": ["none"],
                "dq_scenario_bandwidths": ["100mbit"],
                "dq_scenario_timeout_s": 90,
            }
        ),
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    results = Path((CACHE / "results" / "latest").resolve())
    runs = sorted(results.glob("run-*.json"))
    assert len(runs) == 1, runs
    doc = json.loads(runs[0].read_text())
    from dq_agent.schema import validate

    validate(doc)
    s = doc["summary"]
    assert doc["environment"]["via"] == "libvirt"
    assert s["converged"] is True, s
    assert s["alive_on"] == "destination", s  # checked on both hosts: exactly one runs it
    assert s["integrity"] == {"checked": True, "bad_pages": 0, "verdict": "ok"}, s
    assert s["downtime_ms"] is not None and s["bytes_sent"] > 0
    assert doc["link"]["rate_bps"] == 100_000_000
    assert (results / "table.txt").read_text().count("converged") == 1
