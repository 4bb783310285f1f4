"""LabRunner end to end between two sshd "lab hosts" (netns), real QEMU under TCG,
real tc htb on the source host's NIC, everything driven over the SSH sessions."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import artifact, require

from dq_agent.harness.run import RunOptions
from dq_agent.harness.scenario import load_scenario
from dq_agent.runner.inventory import load_inventory
from dq_agent.runner.lab import LabRunner
from runner.lab_hosts import LabHosts

HOST_QEMU = "/usr/bin/qemu-system-x86_64"
PY = sys.executable


def inventory(lab: LabHosts, path: Path) -> Path:
    """The same shape tools/lab.sh writes for the local lab."""
    src, dst = lab.hosts["src"], lab.hosts["dst"]
    path.write_text(
        "all:\n  vars:\n    ansible_user: root\n"
        f"    ansible_ssh_private_key_file: {lab.key}\n"
        f"    ansible_ssh_common_args: -o UserKnownHostsFile={lab.known_hosts} "
        "-o StrictHostKeyChecking=yes\n"
        "  children:\n"
        f"    dq_sources:\n      hosts:\n        dq-src: {{ansible_host: {src.ip}}}\n"
        f"    dq_destinations:\n      hosts:\n        dq-dst: {{ansible_host: {dst.ip}}}\n"
    )
    return path


def leftovers(lab: LabHosts) -> dict[str, Any]:
    """QEMU processes and tc rules still on the hosts (sshd itself is expected)."""
    out: dict[str, Any] = {}
    for name, h in lab.hosts.items():
        comms = []
        for pid in lab.ns_pids(name):
            with contextlib.suppress(OSError):  # short-lived session processes come and go
                comms.append(Path(f"/proc/{pid}/comm").read_text().strip())
        qdisc = subprocess.run(
            ["ip", "netns", "exec", h.ns, "tc", "qdisc", "show", "dev", "eth0"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        out[name] = {"qemu": [c for c in comms if "qemu" in c], "htb": "htb" in qdisc}
    return out


def check_converged(doc: dict[str, Any]) -> None:
    s = doc["summary"]
    assert s["converged"], s
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["bad_pages"] == 0
    assert s["integrity"]["guest"]["side"] == "dst"
    assert s["alive_on"] == "destination"
    assert s["running_on_hosts"] == ["dq-dst"]  # exactly one host runs the guest
    assert len(doc["progress"]) > 3 and doc["guest_timeline"]
    assert {r["vcpu"] for r in doc["guest_timeline"]} == {0, 1}
    assert doc["link"]["rate_bps"] == 100e6 and doc["link"]["dev"] == "eth0"


@pytest.fixture(scope="module")
def appliance() -> Path:
    app = artifact("appliance")
    require(app is not None, "guest appliance (tools/build-appliance.sh)")
    assert app is not None
    return app


def test_uniform_migrates_between_lab_hosts_with_none(
    lab: LabHosts, appliance: Path, tmp_path: Path
) -> None:
    src, dst = load_inventory(inventory(lab, tmp_path / "hosts.yml"))
    remote_app = str(lab.tmp / "remote-appliance")  # missing: copied over SFTP
    sc = load_scenario("uniform", timeout_s=60, baseline_s=2)
    with LabRunner(src, dst, remote_app) as r:
        doc = r.run(sc, "none", {}, RunOptions(qemu=HOST_QEMU, accel="tcg", out_dir=tmp_path))
        during = leftovers(lab)
        assert r.src.bridges() == r.dst.bridges() == []  # the run closed its tunnels
    check_converged(doc)
    assert doc["environment"]["accel"] == "tcg"
    assert (Path(remote_app) / "initrd.gz").read_bytes() == (appliance / "initrd.gz").read_bytes()
    assert (
        during
        == leftovers(lab)
        == {
            "src": {"qemu": [], "htb": False},
            "dst": {"qemu": [], "htb": False},
        }
    )
    written = list(tmp_path.glob("uniform-none-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["run_id"] == doc["run_id"]
    s = doc["summary"]
    print(
        f"none: {s['total_time_s']} s, downtime {s['downtime_ms']} ms, "
        f"{s['bytes_sent'] / 2**20:.0f} MiB, {s['iterations']} iterations"
    )


def test_skewed_none_is_cancelled_and_stays_on_the_source(lab: LabHosts, appliance: Path) -> None:
    src, dst = load_inventory(inventory(lab, lab.tmp / "hosts-cancel.yml"))
    sc = load_scenario("skewed", timeout_s=10, baseline_s=2)
    with LabRunner(src, dst, str(appliance)) as r:
        doc = r.run(sc, "none", {}, RunOptions(qemu=HOST_QEMU, accel="tcg"))
    s = doc["summary"]
    assert s["status"] == "cancelled" and not s["converged"]
    assert s["alive_on"] == "source" and s["running_on_hosts"] == ["dq-src"]
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["guest"]["side"] == "src"
    assert leftovers(lab) == {"src": {"qemu": [], "htb": False}, "dst": {"qemu": [], "htb": False}}


def test_dirty_quota_with_patched_qemu_via_cli(
    lab: LabHosts, appliance: Path, tmp_path: Path
) -> None:
    qemu_deb = artifact("qemu")
    require(qemu_deb is not None, "patched QEMU (tools/build-qemu.sh)")
    assert qemu_deb is not None
    key = qemu_deb.name.rsplit(".", 2)[-2].split("_")[0]  # dq-qemu_<ver>+dq.<key>_amd64.deb
    qemu = qemu_deb.parent / key / "opt/dq-qemu/bin/qemu-system-x86_64"
    require(qemu.exists(), f"patched QEMU tree {qemu}")
    inv = inventory(lab, tmp_path / "hosts.yml")
    out = tmp_path / "out"
    p = subprocess.run(
        [PY, "-m", "dq_agent.runner", "run", "--inventory", str(inv), "--scenario", "uniform",
         "--policies", "dirty-quota", "--bandwidth", "100mbit", "--timeout", "60",
         "--qemu", str(qemu), "--accel", "tcg", "--remote-appliance", str(appliance),
         "--out", str(out)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert "dirty-quota" in p.stdout and "converged" in p.stdout
    (res,) = out.glob("*.json")
    doc = json.loads(res.read_text())
    check_converged(doc)
    assert doc["policy"]["name"] == "dirty-quota"
    assert any("quota" in r for r in doc["progress"])  # query-dirty-quota over the tunnel
    assert leftovers(lab)["src"] == {"qemu": [], "htb": False}
    print(p.stdout)


def test_cli_bad_inventory_is_one_line_exit_2(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yml"
    inv.write_text(
        "all:\n  children:\n    dq_sources:\n      hosts:\n        a: {ansible_port: 0}\n"
    )
    p = subprocess.run(
        [PY, "-m", "dq_agent.runner", "run", "--inventory", str(inv), "--scenario", "uniform"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "ansible_port" in p.stderr, p.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM], ids=["SIGTERM"])
def test_signal_mid_migration_cleans_both_hosts(
    lab: LabHosts, appliance: Path, tmp_path: Path, sig: int
) -> None:
    inv = inventory(lab, tmp_path / "hosts.yml")
    p = subprocess.Popen(
        [PY, "-m", "dq_agent.runner", "run", "--inventory", str(inv), "--scenario", "skewed",
         "--timeout", "60", "--qemu", HOST_QEMU, "--accel", "tcg",
         "--remote-appliance", str(appliance)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # both QEMUs up on their hosts and the link shaped: the run is in full swing
        while leftovers(lab) != {"src": {"qemu": ["qemu-system-x86"], "htb": True},
                                 "dst": {"qemu": ["qemu-system-x86"], "htb": False}}:  # fmt: skip
            assert p.poll() is None and time.monotonic() < deadline, p.stderr
            time.sleep(0.2)
        time.sleep(3)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "interrupted; cleaned up" in err
    assert leftovers(lab) == {"src": {"qemu": [], "htb": False}, "dst": {"qemu": [], "htb": False}}
    assert not list(Path("/tmp").glob("dqr-skewed-*"))  # remote run dirs (same filesystem here)
