"""`--via libvirt`: one lab run with the guest as a libvirt domain, migrated by libvirt.

The same run as `--via qemu` (the harness's Run: scenario, policy plug-ins, progress
records from `query-migrate`, guest parser, summary, integrity, result JSON) except that
- the guest is a domain defined and started on the source's libvirtd, declaring the run's
  policy in its metadata (contracts §5, as roles/dq_migration's dq-migrate does);
- libvirt migrates it: a managed, client-coordinated (non-p2p) `virDomainMigrate3` with
  both connections, data straight from QEMU to QEMU over `tcp://<dst migration address>`;
- auto-converge is libvirt's (`VIR_MIGRATE_AUTO_CONVERGE` + its initial/increment
  parameters: libvirt resets capabilities set behind its back at migration start);
  dirty-quota is enforced by the host's dq-agent or by the runner (enforcement.py);
- QMP (polls, set-dirty-quota) goes through libvirt's monitor passthrough, cancelling is
  `virDomainAbortJob`, and the guest serial is tunnelled from whichever host runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import libvirt

from dq_agent.harness.errors import (
    HarnessError,
    PolicyUnavailable,
    QMPCommandError,
    QMPError,
    ScenarioError,
)
from dq_agent.harness.guest import Console
from dq_agent.harness.policies import Policy
from dq_agent.harness.qemu import QMP_TIMEOUT_S
from dq_agent.harness.run import RunOptions
from dq_agent.harness.scenario import Scenario
from dq_agent.runner.lab import LabRun, RemoteLink
from dq_agent.runner.ssh import Session
from dq_agent.runner.virt import (
    DECLARABLE,
    SERIAL_DIR,
    LibvirtDomain,
    VirtHost,
    completed_reply,
    domain_xml,
)

log = logging.getLogger("dq_agent.runner")

# Kernel and initrd where libvirt's QEMU user may read them (and AppArmor allows it).
LIBVIRT_IMAGES = "/var/lib/libvirt/images/dqlab-runner"
JOB_END_S = 60.0  # libvirt's Finish/Confirm after QEMU's own end of the migration
# The domain moves whole: defined on the destination, undefined on the source.
FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)


def check_policy(policy: Policy) -> None:
    """What libvirt cannot express is bad input before anything starts."""
    if policy.name == "auto-converge" and policy.params.get("tailslow"):
        raise ScenarioError(
            "policy.params.tailslow: libvirt has no tailslow migration parameter (--via qemu)"
        )


class LibvirtRun(LabRun):
    """The harness run with the guest as a libvirt domain on the lab hosts."""

    def __init__(
        self,
        sc: Scenario,
        policy: Policy,
        opts: RunOptions,
        link: RemoteLink,
        sessions: tuple[Session, Session],
        remote_appliance: str | None,
        virt: tuple[VirtHost, VirtHost],
        enforced_by: str | None,
    ) -> None:
        super().__init__(sc, policy, opts, link, sessions, remote_appliance)
        self.virt = virt
        self.enforced_by = enforced_by
        self._mig: asyncio.Task[Any] | None = None
        self._cancelled = False
        self._downtime_set = False
        self.throttle_after: dict[str, Any] | None = None

    # -- the run ----------------------------------------------------------------------
    async def execute(self) -> dict[str, Any]:
        app, accel = await self._prepare_hosts(LIBVIRT_IMAGES)
        emulator = self.opts.qemu  # `auto` was resolved by LabRunner
        self.env |= {
            "via": "libvirt",
            "libvirt_version": self.virt[0].version(),
            "libvirt_version_destination": self.virt[1].version(),
            "libvirt_socket": self.virt[0].remote_socket,
            "migration": "libvirt managed, client-coordinated (non-p2p), live",
        }
        name = f"dqr-{self.run_id}"
        serial = f"{SERIAL_DIR}/{name}.serial"
        self.src = LibvirtDomain(self.virt[0], name, serial)  # type: ignore[assignment]
        self.dst = LibvirtDomain(self.virt[1], name, serial)  # type: ignore[assignment]
        fw = [self.opts.firmware_dir] if self.opts.firmware_dir else []
        if not fw and not emulator.startswith("/usr/"):
            fw = ["/usr/share/qemu", "/usr/share/seabios"]  # an extracted QEMU: Debian's
        cmdline = ["console=ttyS0", "quiet", "panic=-1", *self.sc.kernel_args()]
        xml = domain_xml(
            name,
            accel=accel,
            emulator=emulator,
            memory_mib=self.sc.memory_mib,
            vcpus=len(self.sc.vcpus),
            kernel=f"{app}/vmlinuz",
            initrd=f"{app}/initrd.gz",
            cmdline=" ".join([*cmdline, *self.opts.extra_append]),
            serial=serial,
            firmware_dirs=tuple(fw),
        )
        consoles: list[Console] = []
        try:
            return await self._migrate_libvirt(consoles, xml)
        finally:
            for c in consoles:
                await c.close()
            await self._end_job()
            await self.src.stop()
            await self.dst.stop()

    async def _migrate_libvirt(self, consoles: list[Console], xml: str) -> dict[str, Any]:
        sc, src, dst = self.sc, self._src(), self._dst()
        if self.policy.name not in DECLARABLE:
            return self._document(
                time.monotonic(),
                unavailable=f"{self.policy.name}: not driven through libvirt (use --via qemu)",
            )
        t_boot = time.monotonic()
        await src.define_and_start(xml, self.policy.name)
        src_con = Console("src", src.open_serial(), self.state)
        await src_con.connect()
        consoles.append(src_con)
        await self._wait_ready(t_boot)
        t_baseline = time.monotonic()
        await asyncio.sleep(sc.baseline_s)
        try:
            await self.policy.check(self)
        except PolicyUnavailable as e:
            log.warning("policy %s unavailable: %s", self.policy.name, e)
            return self._document(t_baseline, unavailable=str(e))

        flags, params = self._migration_params()
        self.t0 = time.monotonic()
        self._mig = asyncio.create_task(asyncio.to_thread(self._migrate3, flags, params))
        try:
            final = await self._poll()
            final = await self._job_outcome(final)
        except Exception:
            await self._abort()
            raise
        t_end = time.monotonic()
        await self.policy.finish(self)

        converged = final.get("status") == "completed"
        side, vm, con = ("src", src, src_con)
        if converged:
            side, vm = "dst", dst
            con = Console("dst", dst.open_serial(), self.state)
            await con.connect()
            consoles.append(con)
            await self._settle(dst)  # type: ignore[arg-type]
        alive = await self._alive(side, vm, t_end)
        guest = await self._verify(con) if alive else None
        if alive:
            self.throttle_after = await self._throttle_left(vm)
        return self._document(
            t_baseline, final, t_end, converged, side, alive, self._integrity(guest, None)
        )

    def _src(self) -> LibvirtDomain:
        assert isinstance(self.src, LibvirtDomain)
        return self.src

    def _dst(self) -> LibvirtDomain:
        assert isinstance(self.dst, LibvirtDomain)
        return self.dst

    # -- libvirt's migration job ------------------------------------------------------
    def _migration_params(self) -> tuple[int, dict[str, Any]]:
        flags = FLAGS
        params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://{self.link.dst_ip}"}
        if self.policy.name == "auto-converge":
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = self.policy.params["initial"]
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = self.policy.params[
                "increment"
            ]
        return flags, params

    def _migrate3(self, flags: int, params: dict[str, Any]) -> None:
        """libvirt's managed migration, on the hosts' job connections (see VirtHost)."""
        dom = self.virt[0].job.lookupByName(self._src().name)
        dom.migrate3(self.virt[1].job, params, flags)

    async def _query_migration(self) -> dict[str, Any]:
        """QEMU's query-migrate through libvirt while the job runs; libvirt's own verdict
        once it ended (the source QEMU is gone right after a completed migration)."""
        assert self._mig is not None
        if not self._mig.done():
            try:
                q = await self._src().query("query-migrate")
            except QMPError:
                await asyncio.wait({self._mig}, timeout=JOB_END_S)
                if not self._mig.done():
                    raise
            else:
                if not self._downtime_set and q.get("status") == "active":
                    await self._set_downtime()
                if self._cancelled and q.get("status") == "failed":
                    # after virDomainAbortJob QEMU sometimes ends in `failed` ("Channel
                    # error: Input/output error", 2 of 4 aborts here), not `cancelled`:
                    # either way the runner's cancel ended it, and the guest stays put
                    self.notes.append(f"QEMU said failed after the cancel: {q.get('error-desc')}")
                    q = {**q, "status": "cancelled"}
                return q
        return await self._libvirt_final()

    async def _set_downtime(self) -> None:
        """The scenario's downtime limit, once the job is active (as dq-migrate does)."""
        self._downtime_set = True
        ms = int(self.sc.downtime_limit_ms)

        def go() -> None:
            self.virt[0].conn.lookupByName(self._src().name).migrateSetMaxDowntime(ms, 0)

        try:
            await asyncio.wait_for(asyncio.to_thread(go), QMP_TIMEOUT_S)
        except (libvirt.libvirtError, TimeoutError) as e:
            self.notes.append(f"migrateSetMaxDowntime({ms}) failed: {e}")

    async def _libvirt_final(self) -> dict[str, Any]:
        assert self._mig is not None and self._mig.done()
        err = self._mig.exception()
        if err is not None:
            status = "cancelled" if self._cancelled else "failed"
            return {"status": status, "error-desc": str(err)[:300]}
        for host in (self.virt[1], self.virt[0]):  # stats travel to the destination

            def go(host: VirtHost = host) -> Any:
                dom = host.lookup(self._src().name)
                return dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED) if dom else None

            with contextlib.suppress(libvirt.libvirtError, TimeoutError):
                stats = await asyncio.wait_for(asyncio.to_thread(go), QMP_TIMEOUT_S)
                if stats:
                    self.notes.append(f"final statistics from libvirt ({host.name})")
                    return completed_reply(stats)
        return {"status": "completed"}

    async def _job_outcome(self, final: dict[str, Any]) -> dict[str, Any]:
        """libvirt's result wins over QEMU's: a migration QEMU completed can still fail in
        libvirt's Finish phase (then the guest resumes on the source)."""
        assert self._mig is not None
        done, _ = await asyncio.wait({self._mig}, timeout=JOB_END_S)
        if not done:
            raise HarnessError(f"libvirt migration job did not end within {JOB_END_S:.0f} s")
        err = self._mig.exception()
        if err is not None:
            self.notes.append(f"libvirt: {str(err)[:300]}")
            if final.get("status") == "completed":
                final = {**final, "status": "failed"}
        return final

    async def _cancel_migration(self, timeout: float = QMP_TIMEOUT_S) -> None:
        self._cancelled = True

        def go() -> None:
            dom = self.virt[0].lookup(self._src().name)
            if dom is not None:
                dom.abortJob()

        try:
            await asyncio.wait_for(asyncio.to_thread(go), timeout)
        except libvirt.libvirtError as e:
            raise QMPError(f"abortJob ({self.virt[0].name}): {e}") from None

    async def _end_job(self) -> None:
        """Whatever happened, no migration job outlives the run (bounded)."""
        if self._mig is None or self._mig.done():
            return
        with contextlib.suppress(Exception):
            await self._cancel_migration(QMP_TIMEOUT_S)
        with contextlib.suppress(Exception):
            await asyncio.wait({self._mig}, timeout=JOB_END_S)

    async def src_cmd(self, name: str, **args: Any) -> Any:
        """Policies' QMP: a source domain that left (the migration just completed) is a
        command error, which the policies already tolerate, not a broken monitor."""
        try:
            return await self._src().cmd(name, **args)
        except QMPCommandError:
            raise
        except QMPError as e:
            if await self._src().status() == "dead":
                raise QMPCommandError(name, f"the source domain is gone ({e})") from None
            raise

    async def _throttle_left(self, vm: LibvirtDomain) -> dict[str, Any]:
        """Is anything still slowing the guest where it runs now?"""
        out: dict[str, Any] = {"host": vm.host.name}
        with contextlib.suppress(QMPError):
            out["cpu_throttle_pct"] = (await vm.query("query-migrate")).get(
                "cpu-throttle-percentage", 0
            )
        try:
            out["dirty_quota_enabled"] = bool((await vm.query("query-dirty-quota"))["enabled"])
        except QMPCommandError:
            out["dirty_quota_enabled"] = None  # a QEMU without dirty quota
        except (QMPError, KeyError):
            pass
        return out

    # -- result -----------------------------------------------------------------------
    def _decorate(self, doc: dict[str, Any]) -> None:
        doc["policy"]["enforced_by"] = self.enforced_by
        s = doc["summary"]
        if self.policy.name == "dirty-quota":
            s["quota_enabled_seen"] = any(
                (r.get("quota") or {}).get("enabled") for r in self.progress
            )
            if self.enforced_by == "dq-agent" and self.t0 and not s["quota_enabled_seen"]:
                s.setdefault("notes", []).append("dq-agent never enabled dirty quota")
        s["throttle_after"] = self.throttle_after


def enforcer_for(policy: Policy, dirty_quota_by: str, agent_running: bool, host: str) -> str:
    """`policy.enforced_by` of the result: nothing, QEMU (auto-converge via libvirt), the
    host's dq-agent or the runner."""
    from dq_agent.runner import enforcement

    if policy.name == "dirty-quota":
        return enforcement.choose(dirty_quota_by, agent_running, host)
    return {"none": "nothing", "auto-converge": "qemu (libvirt auto-converge)"}.get(
        policy.name, "runner"
    )
