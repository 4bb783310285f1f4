"""Full path: real libvirtd x2, a real TCG guest, a libvirt live migration, the real agent
noticing it by itself, and a real Prometheus scraping the agent.

- `observe` on the host's QEMU 10: runs everywhere; the guest's working set is small
  enough to converge unthrottled; asserts discovery, migration metrics and Prometheus.
- `dirty-quota` on the patched QEMU (tools/build-qemu.sh): the guest rewrites 32 MiB,
  which cannot converge over the 40 Mbit link unthrottled; the agent enforces through
  the dirty-quota backend, the migration converges, and Prometheus has every metric.
  It writes the enforcement trace to $DQ_CACHE/agent-tests/trace-dirty-quota.tsv.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_proc import AgentProcess, free_port, samples, scrape, value, write_config
from conftest import require
from dirtier_guest import write as write_guest
from lab_fixtures import AGENT_CACHE, FIRMWARE_DIRS, HOST_QEMU, Migration, patched_qemu
from libvirt_lab import LibvirtLab, domain_xml
from prom import PROMETHEUS, Prometheus

from dq_agent.agent.metrics import FAMILIES, exposed_name

pytestmark = pytest.mark.slow
LINK_MBIT = 40
# Families a backend cannot fill: per-vCPU dirty rate exists only for dirty-limit.
NOT_FROM_DIRTY_QUOTA = {"dq_vcpu_dirty_rate_bytes_per_second"}
PER_VCPU = {f for f in FAMILIES if f.startswith("dq_vcpu_")}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LibvirtLab]:
    require(Path("/usr/sbin/libvirtd").exists(), "libvirtd missing (tools/deps/apt-agent.txt)")
    require(Path(PROMETHEUS).exists(), "prometheus missing (tools/deps/apt-agent.txt)")
    root = tmp_path_factory.mktemp("lab")
    with LibvirtLab(root, LINK_MBIT, caps_cache=AGENT_CACHE / "libvirt-cache") as lab:
        yield lab


def _run(
    lab: LibvirtLab,
    tmp: Path,
    emulator: Path,
    backend: str,
    working_set_mib: int,
    fill_mib: int,
    name: str,
    trace: Path | None,
) -> tuple[Migration, AgentProcess, str, list[str]]:
    import libvirt

    src, dst = libvirt.open(lab.src.uri), libvirt.open(lab.dst.uri)
    kernel = write_guest(tmp / f"{name}.bin", working_set_mib, fill_mib)
    fw = () if emulator == HOST_QEMU else FIRMWARE_DIRS
    dom = src.createXML(
        domain_xml(name, kernel, str(emulator), memory_mib=128, vcpus=2, firmware_dirs=fw), 0
    )
    agent_port, prom_port = free_port(), free_port()
    cfg = write_config(tmp / f"{name}.toml", lab.src.uri, agent_port, backend)
    agent = AgentProcess(cfg, tmp, name)
    prom = Prometheus(tmp, prom_port, [f"127.0.0.1:{agent_port}"])
    rows: list[str] = []
    try:
        agent.wait_ready()
        prom.wait_ready()
        time.sleep(1.0)  # let the guest dirty its working set before we start
        cpu0 = agent.cpu_seconds()
        mig = Migration(dom, dst, f"tcp://{lab.dst.addr}:49152").start()
        t0 = time.monotonic()
        while not mig.done.wait(0.5) and time.monotonic() - t0 < 150:
            rows += _trace_rows(scrape(agent_port), time.monotonic() - t0, name)
        ok = mig.wait(1.0)
        share = (agent.cpu_seconds() - cpu0) / max(time.monotonic() - t0, 1e-3)
        # (includes serving the test's and Prometheus' scrapes)
        print(f"\nreal agent CPU during the migration: {share * 100:.2f}% of one core")
        assert ok, f"migration failed: {mig.error}\n{agent.log()[-3000:]}"
        time.sleep(2.5)  # two more Prometheus scrapes after the end
        missing = [exposed_name(f) for f in FAMILIES if prom.series_count(exposed_name(f)) == 0]
        if trace is not None:
            trace.parent.mkdir(parents=True, exist_ok=True)
            trace.write_text("\n".join([TRACE_HEADER, *rows]) + "\n")
        return mig, agent, agent.log(), missing
    finally:
        prom.stop()
        assert agent.stop() == 0, "SIGTERM must end the agent cleanly"
        for c in (src, dst):
            for d in c.listAllDomains():
                if d.name() == name and d.isActive():
                    d.destroy()


TRACE_HEADER = "\t".join(
    [
        "t_s",
        "iteration",
        "remaining_bytes",
        "budget_pages",
        "throttle",
        "vcpu",
        "quota_pages",
        "dirtied_pages_total",
        "sleep_seconds_total",
        "exhausted_total",
    ]
)


def _trace_rows(text: str, t: float, domain: str) -> list[str]:
    it = value(text, "dq_migration_iteration", domain=domain)
    if it is None:
        return []
    rem = value(text, "dq_migration_remaining_bytes", domain=domain)
    budget = value(text, "dq_migration_budget_pages", domain=domain)
    thr = value(text, "dq_migration_throttle_enabled", domain=domain)
    vcpus = sorted({lab["vcpu"] for n, lab, _ in samples(text) if "vcpu" in lab})
    base = f"{t:.1f}\t{it:.0f}\t{rem:.0f}\t{budget:.0f}\t{thr:.0f}"
    if not vcpus:
        return [base + "\t-\t-\t-\t-\t-"]
    out = []
    for v in vcpus:

        def g(n: str, v: str = v) -> str:
            x = value(text, n, domain=domain, vcpu=v)
            return "-" if x is None else f"{x:g}"

        out.append(
            f"{base}\t{v}\t{g('dq_vcpu_quota_pages')}\t{g('dq_vcpu_dirtied_pages_total')}"
            f"\t{g('dq_vcpu_throttle_sleep_seconds_total')}\t{g('dq_vcpu_quota_exhausted_total')}"
        )
    return out


def test_observe_backend_host_qemu(lab: LibvirtLab, tmp_path: Path) -> None:
    """Stock QEMU: the agent finds the migration by itself and exports it; no throttle."""
    name = f"dqag-obs-{lab.suffix}"
    mig, _agent, log, missing = _run(lab, tmp_path, HOST_QEMU, "auto", 1, 24, name, None)
    assert re.search(rf"msg=\"migration adopted\" domain={name} .*backend=observe", log), log
    # auto probed dirty-quota and said why it cannot work on the stock QEMU.
    assert "not the patched QEMU" in log
    assert re.search(rf"msg=\"migration finished\" domain={name}", log), log
    # systemd protocol: READY once, then watchdog pings, STOPPING on SIGTERM.
    assert {"READY=1", "WATCHDOG=1", "STOPPING=1"} <= set(_agent.notices), _agent.notices
    expected_missing = {exposed_name(f) for f in PER_VCPU}  # observe reads no vCPU figures
    assert set(missing) <= expected_missing, f"no series in Prometheus for {missing}"
    print(f"observe migration took {mig.seconds:.1f}s")


def test_dirty_quota_enforced_and_converges(lab: LibvirtLab, tmp_path: Path) -> None:
    qemu = patched_qemu()
    require(qemu is not None, "patched QEMU not built yet (tools/build-qemu.sh)")
    assert qemu is not None
    name = f"dqag-dq-{lab.suffix}"
    trace = AGENT_CACHE / "trace-dirty-quota.tsv"
    mig, _agent, log, missing = _run(lab, tmp_path, qemu, "dirty-quota", 32, 0, name, trace)
    assert re.search(rf"msg=\"migration adopted\" domain={name} .*backend=dirty-quota", log), log
    rows = [r.split("\t") for r in trace.read_text().splitlines()[1:]]
    assert any(r[4] == "1" for r in rows), "the agent never had a throttle in force"
    assert any(r[8] not in ("-", "0") for r in rows), "no vCPU ever slept on its quota"
    expected = {exposed_name(f) for f in set(FAMILIES) - NOT_FROM_DIRTY_QUOTA}
    assert not (set(missing) & expected), f"no series in Prometheus for {missing}"
    print(f"dirty-quota migration converged in {mig.seconds:.1f}s; trace: {trace}")


def _query_dirty_quota(dom: object) -> dict[str, object]:
    import json

    import libvirt_qemu

    reply = json.loads(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-dirty-quota"}', 0))
    return dict(reply["return"])


def _wait_metric(port: int, name: str, want: float, timeout_s: float, **labels: str) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if value(scrape(port), name, **labels) == want:
                return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"{name}{labels} never became {want} in {timeout_s}s")


def test_hard_kill_guest_unthrottled_within_deadline_and_restart_resumes(
    lab: LibvirtLab, tmp_path: Path
) -> None:
    """SIGKILL the agent mid-migration: QEMU's deadline unthrottles the guest by itself;
    a restarted agent finds the running migration (no event replays it) and enforces again."""
    import libvirt

    qemu = patched_qemu()
    require(qemu is not None, "patched QEMU not built yet (tools/build-qemu.sh)")
    assert qemu is not None
    deadline_ms = 1000
    name = f"dqag-kill-{lab.suffix}"
    src, dst = libvirt.open(lab.src.uri), libvirt.open(lab.dst.uri)
    kernel = write_guest(tmp_path / "g.bin", 32)
    dom = src.createXML(
        domain_xml(name, kernel, str(qemu), memory_mib=128, vcpus=2, firmware_dirs=FIRMWARE_DIRS),
        0,
    )
    port = free_port()
    cfg = write_config(
        tmp_path / "a.toml", lab.src.uri, port, "dirty-quota", deadline_ms=deadline_ms
    )
    agent = AgentProcess(cfg, tmp_path, "first")
    second: AgentProcess | None = None
    third: AgentProcess | None = None
    mig: Migration | None = None
    try:
        agent.wait_ready()
        time.sleep(1.0)
        mig = Migration(dom, dst, f"tcp://{lab.dst.addr}:49152").start()
        _wait_metric(port, "dq_migration_throttle_enabled", 1, 60, domain=name)
        q = _query_dirty_quota(dom)
        assert q["enabled"] is True, q
        agent.kill()
        t_kill = time.monotonic()
        agent.stop()
        t_off = None
        while time.monotonic() - t_kill < deadline_ms / 1000 + 5:
            if _query_dirty_quota(dom)["enabled"] is False:
                t_off = time.monotonic()
                break
            time.sleep(0.05)
        assert t_off is not None, "guest still throttled long after the deadline"
        unthrottled_after = t_off - t_kill
        # The deadline counts from the last renewal (<= one tick before the kill).
        assert unthrottled_after <= deadline_ms / 1000 + 1.0, unthrottled_after
        assert not mig.done.is_set(), "migration ended before the restart could be tested"

        # The restarted agent runs with a long deadline, so that a release we see at once
        # after its SIGTERM is its own doing, not QEMU's deadline.
        cfg_long = write_config(
            tmp_path / "b.toml", lab.src.uri, port, "dirty-quota", deadline_ms=10000
        )
        second = AgentProcess(cfg_long, tmp_path, "second")
        second.wait_ready()
        _wait_metric(port, "dq_migration_throttle_enabled", 1, 30, domain=name)
        assert re.search(
            rf"msg=\"migration adopted\" domain={name} reason=found-at-connect", second.log()
        ), second.log()
        assert _query_dirty_quota(dom)["enabled"] is True
        assert second.stop(signal.SIGTERM) == 0
        released = _query_dirty_quota(dom)
        assert released["enabled"] is False, f"SIGTERM left the guest throttled: {released}"

        third = AgentProcess(cfg, tmp_path, "third")
        third.wait_ready()
        assert mig.wait(150), f"migration did not converge after restart: {mig.error}"
        print(
            f"unthrottled {unthrottled_after:.2f}s after SIGKILL (deadline {deadline_ms} ms); "
            f"migration converged after restart in {mig.seconds:.1f}s total"
        )
    finally:
        if mig is not None and not mig.done.is_set():
            mig.wait(0)
        for a in (agent, second, third):
            if a is not None:
                a.stop()
        for c in (src, dst):
            for d in c.listAllDomains():
                if d.name() == name and d.isActive():
                    d.destroy()


def test_reconnects_after_libvirtd_restart(lab: LibvirtLab, tmp_path: Path) -> None:
    """Kill the source libvirtd under the agent: the close callback marks the connection
    lost, the agent reconnects, re-registers its events and still adopts migrations."""
    import libvirt

    port = free_port()
    cfg = write_config(tmp_path / "r.toml", lab.src.uri, port, "observe")
    agent = AgentProcess(cfg, tmp_path, "reconnect")
    name = f"dqag-rc-{lab.suffix}"
    src = dst = None
    try:
        agent.wait_ready()
        _wait_metric(port, "dq_agent_libvirt_connected", 1, 10, host="testhost")
        lab.restart_daemon(lab.src)
        deadline = time.monotonic() + 30
        while agent.log().count('msg="libvirt connected"') < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert agent.log().count('msg="libvirt connected"') >= 2, agent.log()
        assert 'msg="libvirt connection closed"' in agent.log()
        _wait_metric(port, "dq_agent_libvirt_connected", 1, 10, host="testhost")
        src, dst = libvirt.open(lab.src.uri), libvirt.open(lab.dst.uri)
        kernel = write_guest(tmp_path / "g.bin", 1, 8)
        dom = src.createXML(domain_xml(name, kernel, str(HOST_QEMU), memory_mib=64), 0)
        mig = Migration(dom, dst, f"tcp://{lab.dst.addr}:49152").start()
        assert mig.wait(90), mig.error
        assert re.search(rf'msg="migration adopted" domain={name}', agent.log()), agent.log()
    finally:
        assert agent.stop() == 0
        for c in (src, dst):
            for d in c.listAllDomains() if c is not None else ():
                if d.name() == name and d.isActive():
                    d.destroy()


def test_real_libvirt_call_cost(lab: LibvirtLab, tmp_path: Path) -> None:
    """Reported: client CPU per jobStats and per QMP passthrough on the real daemon, to add
    the RPC cost the FAKE-layer benchmark (test_overhead.py) leaves out."""
    import json

    import libvirt
    import libvirt_qemu

    src = libvirt.open(lab.src.uri)
    name = f"dqag-cost-{lab.suffix}"
    dom = src.createXML(
        domain_xml(name, write_guest(tmp_path / "g.bin", 1), str(HOST_QEMU), memory_mib=64), 0
    )
    try:
        n = 100
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            dom.jobStats()
        c1, w1 = time.process_time(), time.perf_counter()
        for _ in range(n):
            libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-status"}', 0)
        c2, w2 = time.process_time(), time.perf_counter()
    finally:
        dom.destroy()
    cost = {
        "jobstats_cpu_s": (c1 - c0) / n,
        "jobstats_wall_s": (w1 - w0) / n,
        "qmp_cpu_s": (c2 - c1) / n,
        "qmp_wall_s": (w2 - w1) / n,
    }
    per_tick_cpu = 8 * (cost["jobstats_cpu_s"] + 2 * cost["qmp_cpu_s"])
    cost["rpc_share_8_guests_100ms"] = per_tick_cpu / 0.100
    AGENT_CACHE.mkdir(parents=True, exist_ok=True)
    (AGENT_CACHE / "libvirt-call-cost.json").write_text(json.dumps(cost, indent=1) + "\n")
    print(
        f"\nlibvirt RPC per call: jobStats {cost['jobstats_cpu_s'] * 1e6:.0f} us CPU "
        f"({cost['jobstats_wall_s'] * 1e6:.0f} us wall), QMP {cost['qmp_cpu_s'] * 1e6:.0f} us CPU "
        f"({cost['qmp_wall_s'] * 1e6:.0f} us wall); 8 guests x 3 calls @100 ms = "
        f"{cost['rpc_share_8_guests_100ms'] * 100:.2f}% of one core"
    )
    assert cost["jobstats_wall_s"] > 0


def test_agent_started_mid_migration_adopts_it(lab: LibvirtLab, tmp_path: Path) -> None:
    """No event replays a migration that began before the agent: the connect-time scan
    must find it (the restart half of the hard-kill test, on the host QEMU)."""
    import libvirt

    name = f"dqag-mid-{lab.suffix}"
    src, dst = libvirt.open(lab.src.uri), libvirt.open(lab.dst.uri)
    # 32 MiB rewritten constantly: never converges unthrottled, so it is still running.
    kernel = write_guest(tmp_path / "g.bin", 32)
    dom = src.createXML(domain_xml(name, kernel, str(HOST_QEMU), memory_mib=64), 0)
    mig = Migration(dom, dst, f"tcp://{lab.dst.addr}:49152").start()
    port = free_port()
    agent = AgentProcess(
        write_config(tmp_path / "m.toml", lab.src.uri, port, "observe"), tmp_path, "mid"
    )
    try:
        agent.wait_ready()
        _wait_metric(port, "dq_agent_migrations", 1, 15, host="testhost")
        assert re.search(
            rf'msg="migration adopted" domain={name} reason=found-at-connect', agent.log()
        ), agent.log()
        assert not mig.done.is_set()
    finally:
        mig.wait(0)  # abort: it cannot converge unthrottled
        assert agent.stop() == 0
        for d in src.listAllDomains():
            if d.name() == name and d.isActive():
                d.destroy()
    assert 'msg="migration finished"' in agent.log()


def test_domain_declaring_none_is_observed_not_throttled(lab: LibvirtLab, tmp_path: Path) -> None:
    """The lab's comparison runs declare their policy (contracts §5): with the patched QEMU
    and backend dirty-quota, a domain declaring `none` is adopted but never throttled."""
    import libvirt

    qemu = patched_qemu()
    require(qemu is not None, "patched QEMU not built yet (tools/build-qemu.sh)")
    assert qemu is not None
    name = f"dqag-none-{lab.suffix}"
    src, dst = libvirt.open(lab.src.uri), libvirt.open(lab.dst.uri)
    kernel = write_guest(tmp_path / "g.bin", 32)
    dom = src.createXML(
        domain_xml(name, kernel, str(qemu), memory_mib=128, vcpus=2, firmware_dirs=FIRMWARE_DIRS),
        0,
    )
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        '<migration policy="none"/>',
        "dq",
        "urn:dqlab:migration:1",
        libvirt.VIR_DOMAIN_AFFECT_LIVE,
    )
    port = free_port()
    agent = AgentProcess(
        write_config(tmp_path / "a.toml", lab.src.uri, port, "dirty-quota"), tmp_path, "none"
    )
    mig: Migration | None = None
    try:
        agent.wait_ready()
        time.sleep(1.0)
        mig = Migration(dom, dst, f"tcp://{lab.dst.addr}:49152").start()
        t0 = time.monotonic()
        info: dict[str, str] = {}
        while not info and time.monotonic() - t0 < 30:
            for n, labels, _v in samples(scrape(port)):
                if n == "dq_migration_policy_info" and labels.get("domain") == name:
                    info = labels
            time.sleep(0.2)
        assert info.get("declared_policy") == "none", (info, agent.log()[-2000:])
        assert info.get("policy") == "declared-other-policy", info
        # A few seconds of an unconverging migration: an enforcing agent would have set
        # the quota within one tick.
        for _ in range(10):
            assert _query_dirty_quota(dom)["enabled"] is False
            assert value(scrape(port), "dq_migration_throttle_enabled", domain=name) == 0
            time.sleep(0.3)
        assert "observing only: domain declares another migration policy" in agent.log()
    finally:
        if mig is not None and not mig.done.is_set():
            mig.wait(0)
        agent.stop()
        for c in (src, dst):
            for d in c.listAllDomains():
                if d.name() == name and d.isActive():
                    d.destroy()
