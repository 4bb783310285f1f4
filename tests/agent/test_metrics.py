"""Exposition: promtool-clean, every family present, naming and label rules hold.

The controller state comes from the FAKE hypervisor (fake_hypervisor.py) so all families
are populated; the real-Prometheus check is in test_full_path.py.
"""

from __future__ import annotations

import shutil
import subprocess

from conftest import require
from fake_hypervisor import FakeGuest, FakeHypervisor
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dq_agent.agent.config import Config
from dq_agent.agent.controller import Controller
from dq_agent.agent.metrics import FAMILIES, AgentCollector, exposed_name

IDENTITY = {"domain", "vcpu", "host"}
# Bounded value sets, documented in docs/agent.md.
ENUMS = {"backend", "kind", "policy", "declared_policy"}
DIRTY_LIMIT_ONLY = {"dq_vcpu_dirty_rate_bytes_per_second"}


def exposition() -> str:
    hv = FakeHypervisor(
        [FakeGuest("web"), FakeGuest("db", vcpus=2), FakeGuest("ref", vcpus=2, declared="none")]
    )
    clock = [0.0]
    c = Controller(Config(backend="dirty-quota"), hv, lambda: clock[0])
    for n in hv.migrating_domains():
        c.adopt(n, "test")
    for _ in range(6):  # per-vCPU figures are read at t = 0.2 s and 1.2 s
        clock[0] += 0.2
        hv.advance(0.2)
        c.tick()
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AgentCollector(c.snapshot, "h1"))
    return generate_latest(reg).decode()


def test_every_family_present_with_allowed_labels() -> None:
    text = exposition()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    seen = {s.name for f in fams.values() for s in f.samples}
    for fam in set(FAMILIES) - DIRTY_LIMIT_ONLY:
        assert exposed_name(fam) in seen, f"{fam} missing"
    for f in fams.values():
        assert f.name.startswith("dq_")
        for s in f.samples:
            assert set(s.labels) <= IDENTITY | ENUMS, (s.name, s.labels)
            assert "run" not in "".join(s.labels)
        if f.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in f.samples)


def test_per_vcpu_values_come_from_qemu() -> None:
    text = exposition()
    vals = {
        (s.name, s.labels.get("domain"), s.labels.get("vcpu")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    # FakeGuest: sleep-ns = t * 2e8 at t = 1.2 s -> 0.24 s; dirty-pages = t*5000 + cpu.
    assert abs(vals[("dq_vcpu_throttle_sleep_seconds_total", "db", "1")] - 0.24) < 1e-9
    assert vals[("dq_vcpu_dirtied_pages_total", "db", "1")] == 6001


def test_promtool_check_metrics_clean() -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool missing (Debian package prometheus)")
    assert promtool is not None
    r = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", (
        r.stdout + r.stderr
    )


def test_policy_info_exports_the_declared_policy() -> None:
    fams = {f.name: f for f in text_string_to_metric_families(exposition())}
    info = {s.labels["domain"]: s.labels for s in fams[exposed_name("dq_migration_policy")].samples}
    assert info["ref"]["declared_policy"] == "none"
    assert info["ref"]["policy"] == "declared-other-policy"
    assert info["web"]["declared_policy"] == "" and info["web"]["policy"] == "dirty-quota"
