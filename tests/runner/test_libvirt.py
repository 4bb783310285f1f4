"""`dq-runner --via libvirt` between two sshd lab hosts that also run libvirtd (netns,
real libvirtd 9.0, the patched QEMU under TCG, real tc htb), driven over the sessions:
libvirt's socket tunnelled by direct-streamlocal, libvirt's own migration."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import artifact, require

from dq_agent.harness.run import RunOptions
from dq_agent.harness.scenario import load_scenario
from dq_agent.runner.inventory import load_inventory
from dq_agent.runner.lab import LabRunner
from runner.lab_hosts import SSHD
from runner.libvirt_hosts import LibvirtLabHosts
from runner.test_lab import inventory, leftovers

pytestmark = pytest.mark.slow
PY = sys.executable


@pytest.fixture(scope="module")
def vlab() -> Iterator[LibvirtLabHosts]:
    require(os.geteuid() == 0, "runner tests need root (network namespaces, sshd)")
    require(os.path.exists(SSHD), "openssh-server (tools/deps/apt-runner.txt)")
    require(os.path.exists("/usr/sbin/libvirtd"), "libvirtd (tools/deps/apt-runner.txt)")
    require(shutil.which("virsh") is not None, "virsh (libvirt-clients)")
    hosts = LibvirtLabHosts().up()
    try:
        yield hosts
    finally:
        hosts.close()


@pytest.fixture(scope="module")
def patched_qemu() -> Path:
    deb = artifact("qemu")
    require(deb is not None, "patched QEMU (tools/build-qemu.sh)")
    assert deb is not None
    key = deb.name.rsplit("+dq.", 1)[-1].split("_", 1)[0]
    qemu = deb.parent / key / "opt/dq-qemu/bin/qemu-system-x86_64"
    require(qemu.exists(), f"patched QEMU tree {qemu}")
    return qemu


def nothing_left(vlab: LibvirtLabHosts) -> dict[str, object]:
    return {
        **leftovers(vlab),
        "domains": {n: vlab.domains(n) for n in vlab.hosts},
    }


CLEAN = {
    "src": {"qemu": [], "htb": False},
    "dst": {"qemu": [], "htb": False},
    "domains": {"src": [], "dst": []},
}


def test_dirty_quota_via_libvirt_moves_the_guest_and_cleans_up(
    vlab: LibvirtLabHosts, patched_qemu: Path, tmp_path: Path
) -> None:
    require(artifact("appliance") is not None, "guest appliance (tools/build-appliance.sh)")
    src, dst = load_inventory(inventory(vlab, tmp_path / "hosts.yml"))
    sc = load_scenario("uniform", timeout_s=60, baseline_s=2)
    opts = RunOptions(qemu=str(patched_qemu), accel="tcg", out_dir=tmp_path)
    with LabRunner(src, dst, via="libvirt", dirty_quota_by="auto") as r:
        doc = r.run(sc, "dirty-quota", {}, opts)
        virt = r.virt
        assert virt is not None
        # between runs only the libvirt connections' own tunnels stay open
        assert r.src.bridges() == [virt[0].local_socket]
        assert r.dst.bridges() == [virt[1].local_socket]
    assert r.src.bridges() == r.dst.bridges() == [] and r.virt is None
    assert not Path(virt[0].local_socket).exists()

    s = doc["summary"]
    assert s["converged"] and s["status"] == "completed", s
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["bad_pages"] == 0
    assert s["integrity"]["guest"]["side"] == "dst"
    assert s["alive_on"] == "destination" and s["running_on_hosts"] == ["dq-dst"]
    env = doc["environment"]
    assert env["via"] == "libvirt" and env["accel"] == "tcg"
    assert env["libvirt_socket"] == "/run/libvirt/libvirt-sock"  # probed, as on a real host
    # nothing else runs a dq-agent in these hosts: the runner enforced, and it worked
    assert doc["policy"]["enforced_by"] == "runner" and s["quota_enabled_seen"] is True
    assert any((rec.get("quota") or {}).get("budget_pages") for rec in doc["progress"])
    # after the migration nothing slows the guest where it now runs
    assert s["throttle_after"] == {
        "host": "dq-dst",
        "cpu_throttle_pct": 0,
        "dirty_quota_enabled": False,
    }
    assert {t["vcpu"] for t in doc["guest_timeline"]} == {0, 1}
    assert {t["side"] for t in doc["guest_timeline"]} == {"src", "dst"}
    assert doc["link"]["rate_bps"] == 100e6 and doc["link"]["dev"] == "eth0"
    # the appliance went to libvirt's images directory on each host, over SFTP
    for name in ("src", "dst"):
        images = vlab.root(name) / "lib" / "images" / "dqlab-runner"
        assert list(images.glob("*/initrd.gz")), name
    (written,) = tmp_path.glob("uniform-dirty-quota-*.json")
    assert json.loads(written.read_text())["run_id"] == doc["run_id"]
    deadline = time.monotonic() + 10
    while nothing_left(vlab) != CLEAN and time.monotonic() < deadline:
        time.sleep(0.2)
    assert nothing_left(vlab) == CLEAN
    print(
        f"libvirt dirty-quota: {s['total_time_s']} s, downtime {s['downtime_ms']} ms, "
        f"{s['bytes_sent'] / 2**20:.0f} MiB, {s['iterations']} iterations, boot {s['boot_s']} s"
    )


def test_cli_none_via_libvirt_cancelled_stays_on_the_source(
    vlab: LibvirtLabHosts, tmp_path: Path
) -> None:
    """The lab matrix's own flags (`--qemu auto`, `--result`), policy none, a guest that
    cannot converge: libvirt's job is aborted at the timeout and the guest keeps running
    on the source only."""
    require(artifact("appliance") is not None, "guest appliance (tools/build-appliance.sh)")
    inv = inventory(vlab, tmp_path / "hosts.yml")
    result = tmp_path / "night" / "skewed_100mbit_none_r0.json"
    p = subprocess.run(
        [PY, "-m", "dq_agent.runner", "run", "--inventory", str(inv), "--via", "libvirt",
         "--qemu", "auto", "--scenario", "skewed", "--policies", "none", "--bandwidth",
         "100mbit", "--timeout", "8", "--accel", "tcg", "--result", str(result)],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(result.parent.iterdir()) == [result]  # whole, no temp file left
    doc = json.loads(result.read_text())
    # the hosts share this machine's /opt: the patched QEMU where roles/dq_qemu put it
    patched = "/opt/dq-qemu/bin/qemu-system-x86_64"
    expect = patched if os.access(patched, os.X_OK) else "/usr/bin/qemu-system-x86_64"
    assert doc["environment"]["qemu_binary"] == expect
    s = doc["summary"]
    assert s["status"] == "cancelled" and not s["converged"], s
    assert s["alive_on"] == "source" and s["running_on_hosts"] == ["dq-src"]
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["guest"]["side"] == "src"
    assert doc["policy"]["enforced_by"] == "nothing"
    assert doc["environment"]["via"] == "libvirt"
    assert nothing_left(vlab) == CLEAN


def test_sigterm_mid_libvirt_migration_cleans_both_hosts(
    vlab: LibvirtLabHosts, tmp_path: Path
) -> None:
    """SIGTERM while libvirt migrates: exit 130, the job aborted, the domain gone from
    both daemons, no QEMU, no htb, no run left behind."""
    require(artifact("appliance") is not None, "guest appliance (tools/build-appliance.sh)")
    inv = inventory(vlab, tmp_path / "hosts.yml")
    p = subprocess.Popen(
        [PY, "-m", "dq_agent.runner", "run", "--inventory", str(inv), "--via", "libvirt",
         "--scenario", "skewed", "--timeout", "60", "--accel", "tcg"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        # the guest's QEMU on both hosts: libvirt has started the incoming side
        while [d["qemu"] for n, d in leftovers(vlab).items()] != [["qemu-system-x86"]] * 2:
            assert p.poll() is None and time.monotonic() < deadline, p.stderr
            time.sleep(0.2)
        time.sleep(2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "interrupted; cleaned up" in err
    assert nothing_left(vlab) == CLEAN


def test_dirty_quota_left_to_the_hosts_dq_agent(
    vlab: LibvirtLabHosts, patched_qemu: Path, tmp_path: Path
) -> None:
    """A real dq-agent runs on the source host (its network namespace, its libvirtd):
    `auto` finds it and leaves enforcement to it; the runner never sets the quota but
    records the agent's, and the skewed guest converges under it."""
    require(artifact("appliance") is not None, "guest appliance (tools/build-appliance.sh)")
    from agent.agent_proc import DQ_AGENT, write_config

    cfg = write_config(tmp_path / "agent.toml", vlab.virt_hosts["src"].uri, 9464, "dirty-quota")
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        ["ip", "netns", "exec", vlab.hosts["src"].ns, DQ_AGENT, "run", "--config", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        time.sleep(2)
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()[-1000:]
        src, dst = load_inventory(inventory(vlab, tmp_path / "hosts.yml"))
        sc = load_scenario("skewed", timeout_s=60, baseline_s=2)
        opts = RunOptions(qemu=str(patched_qemu), accel="tcg")
        with LabRunner(src, dst, via="libvirt") as r:
            doc = r.run(sc, "dirty-quota", {}, opts)
    finally:
        agent.terminate()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        log.close()
    s = doc["summary"]
    agent_log = (tmp_path / "agent.log").read_text()
    assert doc["policy"]["enforced_by"] == "dq-agent" and doc["policy"]["params"] == {}
    assert s["quota_enabled_seen"] is True, agent_log[-2000:]  # enabled by the agent
    # the agent adopted the runner's domain and read the declaration the runner wrote
    adopted = [ln for ln in agent_log.splitlines() if 'msg="migration adopted"' in ln]
    assert len(adopted) == 1 and f"domain=dqr-{doc['run_id']} " in adopted[0], agent_log
    assert "declared_policy=dirty-quota" in adopted[0]
    assert s["converged"] and s["running_on_hosts"] == ["dq-dst"], s
    assert s["integrity"]["verdict"] == "ok" and s["integrity"]["bad_pages"] == 0
    assert s["throttle_after"]["dirty_quota_enabled"] is False
    assert nothing_left(vlab) == CLEAN
    print(
        f"agent-enforced dirty-quota (skewed): {s['total_time_s']} s, "
        f"downtime {s['downtime_ms']} ms, {s['bytes_sent'] / 2**20:.0f} MiB"
    )
