"""One migration run (and comparisons): boot, baseline, migrate, poll, verify, clean up.

`run_migration()` returns a run-result document (contracts §6, validated) and removes
every process, namespace and file it created, also on timeout, exception or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dq_agent.harness.errors import HarnessError, PolicyUnavailable, ScenarioError
from dq_agent.harness.guest import Console, GuestState, wait_for
from dq_agent.harness.netns import Link
from dq_agent.harness.policies import Policy, make_policy
from dq_agent.harness.progress import progress_record
from dq_agent.harness.qemu import (
    DEFAULT_QEMU,
    QMP_TIMEOUT_S,
    VM,
    check_version,
    choose_accel,
    qemu_version,
)
from dq_agent.harness.ramcompare import differing_pages
from dq_agent.harness.scenario import Scenario
from dq_agent.harness.summary import throttled_seconds, vcpu_summary
from dq_agent.schema import SCHEMA_NAME, SCHEMA_VERSION, validate

log = logging.getLogger("dq_agent.harness")

REPO = Path(__file__).resolve().parents[4]
POLL_S = 0.08  # query-migrate cadence (50-100 ms)
BOOT_TIMEOUT_S = 90.0
VERIFY_TIMEOUT_S = 60.0
ABORT_QMP_S = 2.0  # best-effort cleanup commands after a QMP failure
MIGRATION_PORT = 4444


@dataclass
class RunOptions:
    """How to run (not what): QEMU binary, accelerator, controls, where results go."""

    qemu: str = DEFAULT_QEMU
    accel: str = "auto"  # auto | kvm | tcg
    allow_old_qemu: bool = False  # permit QEMU < 9.0 under TCG (positive control)
    firmware_dir: str | None = None  # -L for QEMU binaries outside /usr
    appliance: Path | None = None  # dir with vmlinuz + initrd.gz; default: build artifact
    corrupt_page: tuple[int, int] | None = None  # (vcpu, page): flip it on the paused dst
    ram_compare: bool = True  # RAM in shared files; diff src vs paused dst after completion
    out_dir: Path | None = None  # write <run_id>.json here
    extra_append: list[str] = field(default_factory=list)


def appliance_dir(opts: RunOptions) -> Path:
    if opts.appliance:
        return opts.appliance
    tool = REPO / "tools" / "build-appliance.sh"
    out = subprocess.run([str(tool), "--print-path"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise HarnessError("appliance not built: run tools/build-appliance.sh")
    return Path(out.stdout.strip().splitlines()[-1])


def _git_commit() -> str | None:
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or None


class Run:
    """State of one run; also the MigrationContext the policy plug-ins see."""

    def __init__(self, sc: Scenario, policy: Policy, opts: RunOptions, link: Link) -> None:
        self.sc, self.policy, self.opts, self.link = sc, policy, opts, link
        self.run_id = f"{sc.name}-{policy.name}-{uuid.uuid4().hex[:8]}"
        self.state = GuestState()
        self.progress: list[dict[str, Any]] = []
        self.t0 = 0.0
        self.notes: list[str] = []

    async def src_cmd(self, name: str, **args: Any) -> Any:
        return await self.src.cmd(name, **args)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _vm(self, name: str, side: str, accel: str, app: Path, rundir: Path) -> VM:
        append = " ".join(
            ["console=ttyS0", "quiet", "panic=-1", *self.sc.kernel_args(), *self.opts.extra_append]
        )
        dst = side == "dst"
        hold = self.opts.ram_compare or self.opts.corrupt_page is not None
        return VM(
            name=name,
            argv_prefix=self.link.exec_argv(side),
            binary=self.opts.qemu,
            rundir=rundir,
            accel=accel,
            memory_mib=self.sc.memory_mib,
            vcpus=len(self.sc.vcpus),
            kernel=str(app / "vmlinuz"),
            initrd=str(app / "initrd.gz"),
            append=append,
            incoming=dst,
            paused_after_incoming=dst and hold,
            mem_file=Path(f"/dev/shm/{self.run_id}-{side}.ram") if hold else None,
            firmware_dir=self.opts.firmware_dir,
        )

    async def execute(self) -> dict[str, Any]:
        app = appliance_dir(self.opts)
        try:
            # the binary must run before the KVM probe boots it (a missing --qemu is bad
            # input, not a traceback from the probe)
            qemu_version(self.opts.qemu)
            accel = choose_accel(
                self.opts.accel, self.opts.qemu, str(app / "vmlinuz"), str(app / "initrd.gz")
            )
            qver = check_version(self.opts.qemu, accel, self.opts.allow_old_qemu)
        except HarnessError as e:
            raise ScenarioError(f"--qemu: {e}") from None
        self.env = {
            "git_commit": _git_commit(),
            "host": socket.gethostname(),
            "qemu_version": qver,
            "qemu_binary": self.opts.qemu,
            "kernel_version": os.uname().release,
            "accel": accel,
            "appliance": str(app),
        }
        rundir = Path(tempfile.mkdtemp(prefix=f"dqh-{self.run_id}-"))
        self.src = self._vm("src", "src", accel, app, rundir)
        self.dst = self._vm("dst", "dst", accel, app, rundir)
        consoles: list[Console] = []
        try:
            return await self._migrate(consoles)
        finally:
            for c in consoles:
                await c.close()
            await self.src.stop()
            await self.dst.stop()
            shutil.rmtree(rundir, ignore_errors=True)

    async def _migrate(self, consoles: list[Console]) -> dict[str, Any]:
        sc = self.sc
        t_boot = time.monotonic()
        await self.src.start()
        await self.dst.start()
        for side, vm in (("src", self.src), ("dst", self.dst)):
            c = Console(side, vm.serial_path, self.state)
            await c.connect()
            consoles.append(c)
        src_con, dst_con = consoles
        await self._wait_ready(t_boot)
        t_baseline = time.monotonic()
        await asyncio.sleep(sc.baseline_s)

        try:
            await self.policy.check(self)
        except PolicyUnavailable as e:
            log.warning("policy %s unavailable: %s", self.policy.name, e)
            return self._document(t_baseline, unavailable=str(e))

        await self.src.cmd(
            "migrate-set-parameters",
            **{"max-bandwidth": 10 * 1024**3, "downtime-limit": sc.downtime_limit_ms},
        )
        uri = f"tcp:{self.link.dst_ip}:{MIGRATION_PORT}"
        await self.dst.cmd("migrate-incoming", uri=uri)
        await self.policy.prepare(self)
        if self.opts.corrupt_page is not None:
            cpu, page = self.opts.corrupt_page
            await src_con.send(f"pfn {cpu} {page}")
            if not await wait_for(self.state, lambda: (cpu, page) in self.state.pfns, 10):
                raise HarnessError("guest did not report the PFN to corrupt")

        self.t0 = time.monotonic()
        await self.src.cmd("migrate", uri=uri)
        try:
            final = await self._poll()
        except Exception:
            await self._abort()
            raise
        t_end = time.monotonic()
        await self.policy.finish(self)

        converged = final.get("status") == "completed"
        side, vm, con = ("dst", self.dst, dst_con) if converged else ("src", self.src, src_con)
        ram: dict[str, Any] | None = None
        if converged:
            # the source says "completed" before the destination has loaded the last state
            await self._settle(self.dst)
            if self.opts.ram_compare:
                ram = self._ram_compare()
            if self.opts.corrupt_page is not None:
                self._corrupt()
            if self.dst.paused_after_incoming:
                await self.dst.cmd("cont")
        alive = await self._alive(side, vm, t_end)
        guest = await self._verify(con) if alive else None
        integrity = self._integrity(guest, ram)
        return self._document(t_baseline, final, t_end, converged, side, alive, integrity)

    async def _wait_ready(self, t_boot: float) -> None:
        """Until dq-stress says READY (bounded); a field it rejected is bad input."""
        try:
            await asyncio.wait_for(self.state.ready.wait(), BOOT_TIMEOUT_S)
        except TimeoutError:
            raise HarnessError(f"guest did not start dq-stress in {BOOT_TIMEOUT_S:.0f} s") from None
        if self.state.error_field:
            raise ScenarioError(f"vcpus: dq-stress rejected field {self.state.error_field}")
        self.boot_s = time.monotonic() - t_boot
        log.info("guest ready after %.1f s (%s)", self.boot_s, self.env["accel"])

    async def _poll(self) -> dict[str, Any]:
        """Poll query-migrate until it ends; cancel on timeout. Returns the last reply."""
        cancelled_at: float | None = None
        while True:
            q = await self._query_migration()
            rec = progress_record(self.elapsed(), q)
            await self.policy.on_poll(self, rec)
            self.progress.append(rec)
            status = rec["status"]
            if status in ("completed", "failed", "cancelled"):
                return dict(q)
            if cancelled_at is None and self.elapsed() > self.sc.timeout_s:
                log.info("no convergence after %.0f s: migrate_cancel", self.sc.timeout_s)
                cancelled_at = time.monotonic()
                await self._cancel_migration()
            elif cancelled_at is not None and time.monotonic() - cancelled_at > 30:
                raise HarnessError("migration did not stop within 30 s of migrate_cancel")
            await asyncio.sleep(POLL_S)

    # Hooks: how the migration job is read and cancelled. QMP on the source here; the
    # runner's libvirt mode reads QEMU through libvirt and cancels with the libvirt job.
    async def _query_migration(self) -> dict[str, Any]:
        return await self.src.query("query-migrate")

    async def _cancel_migration(self, timeout: float = QMP_TIMEOUT_S) -> None:
        await self.src.cmd("migrate_cancel", timeout=timeout)

    async def _abort(self) -> None:
        """After a failed poll: stop the migration and unthrottle the guest, best effort and
        bounded (the monitor may be the thing that broke); stop() then ends both QEMUs."""
        with contextlib.suppress(Exception):
            await self._cancel_migration(ABORT_QMP_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.policy.finish(self), ABORT_QMP_S)
        with contextlib.suppress(Exception):  # whatever the policy, no guest left throttled
            await self.src.cmd("cancel-dirty-quota", timeout=ABORT_QMP_S)

    async def _settle(self, vm: VM, timeout: float = 20.0) -> str:
        """Wait until the VM has left `inmigrate`; returns its status."""
        deadline = time.monotonic() + timeout
        status = await vm.status()
        while status in ("inmigrate", "unknown") and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = await vm.status()
        return status

    def _corrupt(self) -> None:
        """Flip one byte in the body of an owned page in the stopped destination's RAM."""
        assert self.dst.mem_file is not None and self.opts.corrupt_page is not None
        pfn = self.state.pfns[self.opts.corrupt_page]
        with open(self.dst.mem_file, "r+b") as f:
            f.seek(pfn * 4096 + 2048)
            b = f.read(1)
            f.seek(pfn * 4096 + 2048)
            f.write(bytes([b[0] ^ 0xFF]))
        self.notes.append(f"corrupted pfn {pfn} on the stopped destination")

    async def _alive(self, side: str, vm: VM, t_end: float) -> bool:
        """Running per QMP and still reporting throughput after the migration ended."""
        if await vm.status() != "running":
            return False
        return await wait_for(self.state, lambda: self.state.last_sample_t(side) > t_end, 10)

    def _ram_compare(self) -> dict[str, Any]:
        assert self.src.mem_file is not None and self.dst.mem_file is not None
        pages, bad, first = differing_pages(self.src.mem_file, self.dst.mem_file)
        log.info("RAM compare src vs dst: %d of %d pages differ", bad, pages)
        return {"pages": pages, "differing": bad, "first_pfns": first}

    async def _verify(self, con: Console) -> dict[str, Any] | None:
        """The guest checks every owned page (all workers parked) and reports bad ones."""
        vid = self.state.next_verify_id()
        await con.send(f"verify {vid}")
        if not await wait_for(self.state, lambda: vid in self.state.verifies, VERIFY_TIMEOUT_S):
            return None
        pages, bad = self.state.verifies[vid]
        return {"side": con.side, "pages": pages, "bad": bad}

    @staticmethod
    def _integrity(guest: dict[str, Any] | None, ram: dict[str, Any] | None) -> dict[str, Any]:
        """bad_pages: the guest's own count when it answered, else the RAM diff count.
        Corrupt when either check found a bad page; error when neither could run
        (e.g. the guest died after the switchover and RAM was not compared)."""
        bad = guest["bad"] if guest else (ram["differing"] if ram else None)
        found = (guest is not None and guest["bad"] > 0) or (
            ram is not None and ram["differing"] > 0
        )
        verdict = "corrupt" if found else ("ok" if guest is not None else "error")
        return {
            "checked": guest is not None or ram is not None,
            "bad_pages": bad,
            "verdict": verdict,
            "guest": guest,
            "ram_compare": ram,
        }

    def _document(
        self,
        t_baseline: float,
        final: dict[str, Any] | None = None,
        t_end: float | None = None,
        converged: bool = False,
        side: str | None = None,
        alive: bool = False,
        integrity: dict[str, Any] | None = None,
        unavailable: str | None = None,
    ) -> dict[str, Any]:
        sc, final = self.sc, final or {}
        t_end = t_end or time.monotonic()
        nv = len(sc.vcpus)
        ram = final.get("ram", {})
        timeline = [
            {
                "t": round(s.t_host - t_baseline, 3),
                "t_mig": round(s.t_host - self.t0, 3) if self.t0 else None,
                "vcpu": s.vcpu,
                "ops_per_s": s.ops_per_s,
                "mb_per_s": s.mb_per_s,
                "side": s.side,
                "phase": s.phase,
            }
            for s in self.state.samples
            if s.t_host >= t_baseline
        ]
        report_s = sc.report_ms / 1000
        if self.t0:
            vcpus = vcpu_summary(
                self.state.samples,
                nv,
                (self.t0 - sc.baseline_s, self.t0),
                (self.t0 + report_s, t_end),
                throttled_seconds(self.progress, nv),
            )
        else:
            vcpus = [
                {"vcpu": v, "throughput_retained": None, "runtime_pct": None} for v in range(nv)
            ]
        summary: dict[str, Any] = {
            "converged": converged,
            "status": final.get("status", "not-started"),
            "total_time_s": round(t_end - self.t0, 3) if self.t0 else 0.0,
            "downtime_ms": final.get("downtime") if converged else None,
            "setup_time_ms": final.get("setup-time"),
            # a cancelled job reports no "ram" any more: fall back to the last poll records
            "bytes_sent": int(
                ram.get("transferred")
                or max((r["transferred_bytes"] for r in self.progress), default=0)
            ),
            "iterations": int(
                ram.get("dirty-sync-count")
                or max((r["iteration"] for r in self.progress), default=0)
            ),
            "max_throttle_pct": max((r.get("throttle_pct") or 0 for r in self.progress), default=0),
            "vcpus": vcpus,
            "integrity": integrity
            or {"checked": False, "bad_pages": None, "verdict": "not-checked"},
            "alive_on": (("destination" if side == "dst" else "source") if alive else "none")
            if side
            else None,
            "boot_s": round(getattr(self, "boot_s", 0.0), 2),
        }
        if unavailable:
            summary["unavailable"] = unavailable
        if self.notes:
            summary["notes"] = self.notes
        doc = {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "kind": "real",
            "run_id": self.run_id,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scenario": sc.as_dict(),
            "policy": {"name": self.policy.name, "params": self.policy.params},
            "environment": self.env,
            "link": {
                "rate_bps": sc.link_mbit * 1e6,
                "netns": [self.link.src_ns, self.link.dst_ns],
                "tc": "htb",
                "src_ip": self.link.src_ip,
                "dst_ip": self.link.dst_ip,
            },
            "progress": self.progress,
            "guest_timeline": timeline,
            "summary": summary,
            "guest_log_tail": list(self.state.raw)[-20:],
        }
        validate(doc)
        if self.opts.out_dir:
            self.opts.out_dir.mkdir(parents=True, exist_ok=True)
            import json

            (self.opts.out_dir / f"{self.run_id}.json").write_text(json.dumps(doc, indent=1))
        return doc


async def run_migration_async(
    scenario: Scenario,
    policy: str,
    params: dict[str, Any] | None = None,
    opts: RunOptions | None = None,
    link: Link | None = None,
) -> dict[str, Any]:
    """One run on a fresh guest pair; a given `link` is reused (and left in place)."""
    pol = make_policy(policy, params)  # bad policy/params fail before anything is created
    opts = opts or RunOptions()
    with contextlib.ExitStack() as stack:
        if link is None:
            link = stack.enter_context(Link(scenario.link_mbit))
        elif link.rate_mbit != scenario.link_mbit:
            link.shape(scenario.link_mbit)
        return await Run(scenario, pol, opts, link).execute()


def run_migration(
    scenario: Scenario,
    policy: str,
    params: dict[str, Any] | None = None,
    opts: RunOptions | None = None,
    link: Link | None = None,
) -> dict[str, Any]:
    """Synchronous wrapper of run_migration_async (see there)."""
    return asyncio.run(run_migration_async(scenario, policy, params, opts, link))


def compare(
    scenario: Scenario,
    policies: list[tuple[str, dict[str, Any]]],
    opts: RunOptions | None = None,
) -> list[dict[str, Any]]:
    """Each policy on a fresh guest, all over the same shaped link."""
    for name, params in policies:
        make_policy(name, params)  # validate all before the first run
    with Link(scenario.link_mbit) as link:
        return [run_migration(scenario, n, p, opts, link) for n, p in policies]


def _fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    return format(v, spec) if spec else str(v)


def comparison_table(results: list[dict[str, Any]]) -> str:
    """Side-by-side table, one column per policy."""
    cols = [r["policy"]["name"] for r in results]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, f: Any) -> None:
        rows.append((label, [f(r["summary"]) for r in results]))

    row("available", lambda s: "no: " + s["unavailable"][:40] if "unavailable" in s else "yes")
    row("converged", lambda s: "yes" if s["converged"] else "no")
    row("status", lambda s: s.get("status", "-"))
    row("total time s", lambda s: _fmt(s["total_time_s"], ".1f"))
    row("downtime ms", lambda s: _fmt(s["downtime_ms"]))
    row("setup ms", lambda s: _fmt(s.get("setup_time_ms")))
    row("MiB sent", lambda s: _fmt(s["bytes_sent"] / 2**20, ".0f"))
    row("iterations", lambda s: _fmt(s["iterations"]))
    row("max throttle %", lambda s: _fmt(s.get("max_throttle_pct")))
    nv = max(len(r["summary"]["vcpus"]) for r in results)
    for v in range(nv):
        row(f"vCPU{v} retained", lambda s, v=v: _fmt(s["vcpus"][v]["throughput_retained"], ".2f"))
        row(f"vCPU{v} runtime %", lambda s, v=v: _fmt(s["vcpus"][v]["runtime_pct"], ".0f"))
    row(
        "integrity",
        lambda s: f"{s['integrity']['verdict']} ({_fmt(s['integrity']['bad_pages'])} bad)",
    )
    row("alive on", lambda s: _fmt(s.get("alive_on")))
    w0 = max(len(r[0]) for r in rows)
    ws = [max(len(c), *(len(r[1][i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join([" " * w0, *(c.rjust(w) for c, w in zip(cols, ws, strict=True))])]
    for label, vals in rows:
        lines.append(
            "  ".join([label.ljust(w0), *(v.rjust(w) for v, w in zip(vals, ws, strict=True))])
        )
    return "\n".join(lines)
