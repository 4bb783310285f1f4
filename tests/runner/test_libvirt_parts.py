"""The libvirt mode's pure parts and its bad-input handling (no hosts, no guests):
domain XML, enforcer choice, inventory fields, CLI refusals (one line, exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dq_agent.harness.errors import HarnessError, ScenarioError
from dq_agent.runner.enforcement import AGENT_PROBE, choose
from dq_agent.runner.inventory import load_inventory
from dq_agent.runner.lab import check_policies
from dq_agent.runner.virt import completed_reply, domain_xml

PY = sys.executable
QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"


def test_domain_xml_is_the_harness_guest() -> None:
    text = domain_xml(
        "dqr-x",
        accel="tcg",
        emulator="/opt/dq-qemu/bin/qemu-system-x86_64",
        memory_mib=256,
        vcpus=2,
        kernel="/img/vmlinuz",
        initrd="/img/initrd.gz",
        cmdline="console=ttyS0 dq.t0=dirty,rate=2 <&'\">",
        serial="/var/lib/libvirt/qemu/dqr-x.serial",
        firmware_dirs=("/usr/share/qemu",),
    )
    dom = ET.fromstring(text)
    assert dom.get("type") == "qemu"  # TCG
    assert dom.findtext("name") == "dqr-x"
    assert dom.findtext("memory") == "256" and dom.findtext("vcpu") == "2"
    assert dom.findtext("os/cmdline") == "console=ttyS0 dq.t0=dirty,rate=2 <&'\">"  # escaped
    assert dom.find("features/acpi") is not None  # libvirt 9 would pass -no-acpi
    assert dom.findtext("cpu/model") == "qemu64"
    assert dom.find("devices/serial/source").get("path") == "/var/lib/libvirt/qemu/dqr-x.serial"  # type: ignore[union-attr]
    args = [a.get("value") for a in dom.iter(f"{QEMU_NS}arg")]
    assert args == ["-L", "/usr/share/qemu"]
    kvm = ET.fromstring(
        domain_xml("d", accel="kvm", emulator="/usr/bin/q", memory_mib=1, vcpus=1,
                   kernel="k", initrd="i", cmdline="c", serial="/s")
    )  # fmt: skip
    assert kvm.get("type") == "kvm" and not list(kvm.iter(f"{QEMU_NS}commandline"))


@pytest.mark.parametrize(
    ("requested", "agent", "expect"),
    [
        ("auto", True, "dq-agent"),
        ("auto", False, "runner"),
        ("runner", False, "runner"),
        ("dq-agent", True, "dq-agent"),
        ("runner", True, HarnessError),  # two enforcers would fight over one QEMU
        ("dq-agent", False, HarnessError),
    ],
)
def test_exactly_one_enforces_dirty_quota(requested: str, agent: bool, expect: object) -> None:
    if expect is HarnessError:
        with pytest.raises(HarnessError, match="dq-src"):
            choose(requested, agent, "dq-src")
    else:
        assert choose(requested, agent, "dq-src") == expect


def test_agent_probe_finds_an_agent_in_its_namespace_only() -> None:
    """A process that looks like the agent is found from its own network namespace, not
    from another one (netns "hosts" share a process table), and never the probe itself."""
    pgrep_only = AGENT_PROBE.split(" || ", 1)[1]
    ns = f"dqr-probe-{os.getpid()}"
    assert subprocess.run(["sh", "-c", pgrep_only], check=False).returncode == 1
    subprocess.run(["ip", "netns", "add", ns], check=True)
    looks_like_agent = [PY, "-c", "import time; time.sleep(30)", "/x/bin/dq-agent", "run"]
    agent = subprocess.Popen(["ip", "netns", "exec", ns, *looks_like_agent])
    try:
        time.sleep(0.3)
        inside = ["ip", "netns", "exec", ns, "sh", "-c", pgrep_only]
        assert subprocess.run(inside, check=False).returncode == 0
        assert subprocess.run(["sh", "-c", pgrep_only], check=False).returncode == 1
    finally:
        agent.kill()
        agent.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_completed_job_stats_read_like_query_migrate() -> None:
    q = completed_reply(
        {"time_elapsed": 9000, "downtime": 250, "setup_time": 12, "memory_processed": 10_000,
         "memory_iteration": 7, "memory_bps": 12_500_000}
    )  # fmt: skip
    assert q["status"] == "completed" and q["downtime"] == 250 and q["setup-time"] == 12
    assert q["ram"]["transferred"] == 10_000 and q["ram"]["dirty-sync-count"] == 7
    assert q["ram"]["mbps"] == 100.0


def _inv(tmp: Path, src_vars: str) -> Path:
    p = tmp / "hosts.yml"
    p.write_text(
        "all:\n  children:\n"
        f"    dq_sources:\n      hosts:\n        s: {{ansible_host: 198.18.64.2{src_vars}}}\n"
        "    dq_destinations:\n      hosts:\n        d: {ansible_host: 198.18.64.3}\n"
    )
    return p


def test_inventory_libvirt_fields(tmp_path: Path) -> None:
    src, dst = load_inventory(_inv(tmp_path, ", dq_libvirt_socket: /run/libvirt/x-sock"))
    assert src.libvirt_socket == "/run/libvirt/x-sock" and dst.libvirt_socket is None
    # the real-lab inventory's name for the migration address (roles/dq_libvirt)
    src, _ = load_inventory(_inv(tmp_path, ", dq_libvirt_migration_address: 198.18.65.2"))
    assert src.migration_address == "198.18.65.2"
    src, _ = load_inventory(_inv(tmp_path, ", dq_libvirt_migration_address: '{{ x }}'"))
    assert src.migration_address == "198.18.64.2"  # a Jinja value is Ansible's business
    with pytest.raises(ScenarioError, match="dq_libvirt_socket"):
        load_inventory(_inv(tmp_path, ", dq_libvirt_socket: relative/sock"))


def test_policies_libvirt_cannot_express_are_bad_input() -> None:
    check_policies([("auto-converge", {"tailslow": True})], "qemu")
    with pytest.raises(ScenarioError, match=r"^policy\.params\.tailslow"):
        check_policies([("auto-converge", {"tailslow": True})], "libvirt")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--via", "libvirt", "--policies", "auto-converge:tailslow=1"], "tailslow"),
        (["--dirty-quota-by", "runner"], "--dirty-quota-by"),
        (["--via", "libvirt", "--policies", "none,dirty-quota", "--result", "x.json"], "--result"),
        (["--via", "xen"], "--via"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], field: str) -> None:
    inv = _inv(tmp_path, "")
    p = subprocess.run(
        [PY, "-m", "dq_agent.runner", "run", "--inventory", str(inv), "--scenario", "uniform",
         *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert p.stderr.count("\n") == 1 and field in p.stderr, p.stderr
