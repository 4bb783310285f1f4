"""Fault rows on the real-libvirt setup: the agent and libvirtd faults of issue 9.

It reuses the agent tests' helpers (tests/agent): two real libvirtds, each in its own
network + mount namespace (libvirt_lab.py, here on a /30 of the fault range
198.18.48.0/20 with `dqf` names), the real `dq-agent` process (agent_proc.py), the
patched QEMU, and a libvirt live migration (lab_fixtures.Migration).

The guest is skewed: a multiboot dirtier (dirtier_guest.py) whose vCPU 0 rewrites a
32 MiB working set as fast as TCG runs, while vCPU 1 stays idle; unthrottled it never
converges over the 40 Mbit/s link. Every row ends with the same four checks as the
harness rows (faultrun.assert_fault_invariants):
- alive on exactly one host: the domain runs on exactly one libvirtd, and vCPU 0 moves;
- 0 bad pages: the paused guest's working set, dumped with `pmemsave`, holds exactly
  what the dirtier last wrote (dirtier_guest.bad_pages, against vCPU 0's registers);
- no throttle: `query-dirty-quota` off and no auto-converge throttle where it runs;
- no leak: after teardown no process names the row's directory or domain, and the
  row's namespaces (with their tc rules) are gone.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conftest import REPO
from faultrun import FAULT_NET

sys.path.insert(0, str(REPO / "tests" / "agent"))  # the agent tests' lab helpers
from agent_proc import AgentProcess, free_port, scrape, value, write_config
from dirtier_guest import DIRTY_BASE, bad_pages
from dirtier_guest import write as write_guest
from lab_fixtures import AGENT_CACHE, FIRMWARE_DIRS, Migration, patched_qemu
from libvirt_lab import LibvirtLab, domain_xml
from prom import PROMETHEUS, Prometheus

MEMORY_MIB = 128
WORKING_SET_MIB = 32
LINK_MBIT = 40
DEADLINE_MS = 1000  # the agent's set-dirty-quota deadline: QEMU's fail-safe
MIGRATION_TIMEOUT_S = 60.0
NS = "urn:dqlab:migration:1"

__all__ = [
    "PROMETHEUS",
    "AgentProcess",
    "AgentRow",
    "Prometheus",
    "free_port",
    "patched_qemu",
    "scrape",
    "value",
]


def _qmp(dom: Any, cmd: str, **args: Any) -> Any:
    import libvirt_qemu

    msg = {"execute": cmd, **({"arguments": args} if args else {})}
    return json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(msg), 0))["return"]


def _registers(dom: Any) -> tuple[int, int]:
    import libvirt_qemu

    out = libvirt_qemu.qemuMonitorCommand(
        dom, "info registers", libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
    )
    eip = re.search(r"EIP=([0-9a-f]+)", out)
    esi = re.search(r"ESI=([0-9a-f]+)", out)
    assert eip and esi, out[:400]
    return int(eip.group(1), 16), int(esi.group(1), 16)


def _pids_naming(*needles: str) -> list[str]:
    """Processes whose command line names any needle (ours: a row's dir or domain)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd for n in needles):
            found.append(f"pid {proc.name}: {cmd[:120]}")
    return found


@dataclass
class Outcome:
    status: str  # completed | failed
    alive_on: str  # source | destination
    migration_s: float
    bad_pages: int
    quota_after: dict[str, Any]
    throttle_pct_after: int
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class AgentRow:
    """One migration on its own two-libvirtd lab; everything is torn down on exit."""

    def __init__(self, tmp: Path, policy: str, fault: str) -> None:
        qemu = patched_qemu()
        assert qemu is not None
        self.qemu = qemu
        self.dir = tmp
        self.policy = policy
        self.fault = fault
        self.name = f"dqf-{uuid.uuid4().hex[:8]}"
        self.lab = LibvirtLab(
            tmp / "lab",
            LINK_MBIT,
            caps_cache=AGENT_CACHE / "libvirt-cache",
            net=FAULT_NET,
            prefix="dqf",
        )
        self.agents: list[AgentProcess] = []
        self._conns: dict[str, Any] = {}
        self._mig_conns: list[Any] = []
        self.mig: Migration | None = None
        self.leaked: list[str] = []
        self.t_wall = time.monotonic()

    # -- setup ------------------------------------------------------------------------
    def __enter__(self) -> AgentRow:
        self.lab.start()
        try:
            kernel = write_guest(self.dir / "guest.bin", WORKING_SET_MIB)
            xml = domain_xml(
                self.name, kernel, str(self.qemu), MEMORY_MIB, 2, firmware_dirs=FIRMWARE_DIRS
            )
            dom = self.conn("src").createXML(xml, 0)
            # contracts §5: the run declares its policy; the agent only observes others.
            import libvirt

            dom.setMetadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT,
                f'<migration policy="{self.policy}"/>',
                "dq",
                NS,
                libvirt.VIR_DOMAIN_AFFECT_LIVE,
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def conn(self, side: str) -> Any:
        """A live connection to one host's libvirtd (reopened after a daemon restart)."""
        import libvirt

        c = self._conns.get(side)
        if c is None or not c.isAlive():
            host = self.lab.src if side == "src" else self.lab.dst
            c = self._conns[side] = libvirt.open(host.uri)
        return c

    def dom(self, side: str) -> Any | None:
        import libvirt

        try:
            d = self.conn(side).lookupByName(self.name)
        except libvirt.libvirtError:
            return None
        return d if d.isActive() else None

    def start_agent(self, tag: str, port: int | None = None) -> AgentProcess:
        port = port or free_port()
        cfg = write_config(
            self.dir / f"{tag}.toml", self.lab.src.uri, port, "dirty-quota", deadline_ms=DEADLINE_MS
        )
        a = AgentProcess(cfg, self.dir, tag)
        a.port = port
        self.agents.append(a)
        a.wait_ready()
        return a

    def start_migration(self) -> Migration:
        import libvirt

        time.sleep(0.5)  # the guest has dirtied its working set
        flags = libvirt.VIR_MIGRATE_AUTO_CONVERGE if self.policy == "auto-converge" else 0
        # Connections of its own: a query sharing the connection whose migrate3 RPC is
        # in flight waited until the migration ended (seen here: a hung test).
        sconn, dconn = libvirt.open(self.lab.src.uri), libvirt.open(self.lab.dst.uri)
        self._mig_conns = [sconn, dconn]
        uri = f"tcp://{self.lab.dst.addr}:49152"
        self.mig = Migration(sconn.lookupByName(self.name), dconn, uri, flags=flags).start()
        return self.mig

    # -- observation ------------------------------------------------------------------
    def quota(self, side: str = "src") -> dict[str, Any]:
        d = self.dom(side)
        assert d is not None, f"no running domain on {side}"
        return dict(_qmp(d, "query-dirty-quota"))

    def throttle_pct(self, side: str = "src") -> int:
        d = self.dom(side)
        assert d is not None
        return int(_qmp(d, "query-migrate").get("cpu-throttle-percentage", 0))

    def wait_agent_throttle(self, agent: AgentProcess, timeout_s: float) -> float:
        """Until the agent says its throttle is in force and QEMU agrees."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.mig is not None and not self.mig.done.is_set(), self._why()
            with contextlib.suppress(OSError):
                m = value(scrape(agent.port), "dq_migration_throttle_enabled", domain=self.name)
                if m == 1 and self.quota()["enabled"]:
                    return time.monotonic()
            time.sleep(0.1)
        raise AssertionError(f"agent never throttled in {timeout_s}s: {self._why()}")

    def wait_quota_off(self, timeout_s: float, side: str = "src") -> float | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.quota(side)["enabled"]:
                return time.monotonic()
            time.sleep(0.05)
        return None

    def libvirt_client_pids(self) -> list[int]:
        """Process ids of every client connected to the source libvirtd (virt-admin)."""
        uri = self.lab.src.admin_uri
        out = subprocess.run(
            ["virt-admin", "-c", uri, "client-list", "libvirtd"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
        pids = []
        for ln in out.splitlines():
            fields = ln.split()
            if not fields or not fields[0].isdigit():
                continue
            info = subprocess.run(
                ["virt-admin", "-c", uri, "client-info", "libvirtd", fields[0]],
                capture_output=True, text=True, timeout=10,
            ).stdout  # fmt: skip
            m = re.search(r"unix_process_id\s*:\s*(\d+)", info)
            if m:
                pids.append(int(m.group(1)))
        return pids

    def _why(self) -> str:
        logs = "\n".join(f"--- {a.log_path.name}\n{a.log()[-1500:]}" for a in self.agents)
        err = self.mig.error if self.mig else None
        return f"migration error: {err}\n{logs}"

    # -- the end ----------------------------------------------------------------------
    def finish(self, timeout_s: float = MIGRATION_TIMEOUT_S) -> Outcome:
        """Wait for the migration, then check the guest where it lives."""
        assert self.mig is not None
        ok = self.mig.wait(timeout_s)
        # A restarted libvirtd may still be reconnecting to its QEMUs: ask for a while.
        deadline = time.monotonic() + 15
        live = [s for s in ("src", "dst") if self.dom(s) is not None]
        while len(live) != 1 and time.monotonic() < deadline:
            time.sleep(0.3)
            live = [s for s in ("src", "dst") if self.dom(s) is not None]
        assert len(live) == 1, f"guest running on {live or 'no host'}: {self._why()}"
        side = live[0]
        # Throttling ends with the migration (QEMU's own rule), whoever set it: 2 s.
        off = self.wait_quota_off(2.0, side)
        quota_after = self.quota(side)
        pct = self.throttle_pct(side)
        stats: dict[str, Any] = {}
        d = self.dom(side)
        assert d is not None
        if ok:
            import libvirt

            with contextlib.suppress(libvirt.libvirtError):
                stats = dict(d.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED))
        bad = self._memory_check(d)
        assert off is not None or not quota_after["enabled"], quota_after
        return Outcome(
            status="completed" if ok else "failed",
            alive_on="source" if side == "src" else "destination",
            migration_s=round(self.mig.seconds, 2),
            bad_pages=bad,
            quota_after=quota_after,
            throttle_pct_after=pct,
            stats=stats,
            error=None if ok else str(self.mig.error)[:200],
        )

    def _memory_check(self, d: Any) -> int:
        """Pause, dump the working set, compare with vCPU 0's registers, resume; then
        vCPU 0 must move again (the guest runs)."""
        dump = self.dir / "ws.bin"
        size = WORKING_SET_MIB << 20
        d.suspend()
        try:
            eip, esi = _registers(d)
            _qmp(d, "pmemsave", val=DIRTY_BASE, size=size, filename=str(dump))
        finally:
            d.resume()
        bad = bad_pages(dump.read_bytes(), eip, esi, WORKING_SET_MIB)
        dump.unlink()
        regs = {_registers(d) for _ in range(5) if time.sleep(0.1) is None}
        assert len(regs) > 1, f"vCPU 0 does not run after the migration: {regs}"
        return bad

    def __exit__(self, *exc: object) -> None:
        if self.mig is not None and not self.mig.done.is_set():
            self.mig.wait(0)  # abort: bounded
        for a in self.agents:
            a.stop()
        for side in ("src", "dst"):
            with contextlib.suppress(Exception):
                d = self.dom(side)
                if d is not None:
                    d.destroy()
        for c in [*self._conns.values(), *self._mig_conns]:
            with contextlib.suppress(Exception):
                c.close()
        self.lab.close()
        time.sleep(0.2)
        from dq_agent.faults.netns import list_netns

        self.leaked = [f"netns {h.netns}" for h in (self.lab.src, self.lab.dst)]
        self.leaked = [x for x in self.leaked if x.split()[1] in list_netns()]
        self.leaked += _pids_naming(str(self.dir), f"guest={self.name}")

    # -- records ----------------------------------------------------------------------
    def result_doc(self, out: Outcome) -> dict[str, Any]:
        """The row as a run-result document (contracts §6), for the local history."""
        s = out.stats
        converged = out.status == "completed"
        return {
            "schema": "dqlab-run-result",
            "schema_version": 1,
            "kind": "real",
            "run_id": self.name,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scenario": {"name": "fault-agent-skewed", "memory_mib": MEMORY_MIB},
            "policy": {"name": self.policy, "params": {"enforced_by": "dq-agent"}},
            "environment": {"accel": "tcg", "qemu_binary": str(self.qemu), "via": "libvirt"},
            "link": {"rate_bps": LINK_MBIT * 1_000_000},
            "progress": [],
            "guest_timeline": [],
            "summary": {
                "converged": converged,
                "total_time_s": out.migration_s,
                "downtime_ms": s.get("downtime") if converged else None,
                "bytes_sent": int(s.get("data_processed", 0)),
                "iterations": int(s.get("memory_iteration", 0)),
                "vcpus": [
                    {"vcpu": i, "throughput_retained": None, "runtime_pct": None} for i in range(2)
                ],
                "integrity": {
                    "checked": True,
                    "bad_pages": out.bad_pages,
                    "verdict": "ok" if out.bad_pages == 0 else "corrupt",
                },
                "alive_on": out.alive_on,
                "status": out.status,
            },
        }

    def table_row(self, out: Outcome, recover_s: float | None, note: str) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "policy": self.policy,
            "outcome": f"{out.status}, guest on {out.alive_on}",
            "migration_s": out.migration_s,
            "recover_s": None if recover_s is None else round(recover_s, 2),
            "bad_pages": out.bad_pages,
            "throttle_left": bool(out.quota_after.get("enabled")) or out.throttle_pct_after > 0,
            "dst_quota_enabled": None,
            "vcpu0_after_vs_before": None,
            "wall_s": round(time.monotonic() - self.t_wall, 1),
            "note": note,
        }


def assert_row_invariants(row: AgentRow, out: Outcome) -> None:
    """The four checks every fault row owes (issue 9), on the libvirt setup."""
    assert out.alive_on in ("source", "destination")
    assert out.bad_pages == 0, f"{out.bad_pages} bad pages in the working set"
    assert not out.quota_after["enabled"], f"guest still throttled: {out.quota_after}"
    assert out.throttle_pct_after == 0, f"auto-converge throttle left: {out.throttle_pct_after}%"
    assert not row.leaked, row.leaked
