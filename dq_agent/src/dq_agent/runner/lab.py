"""LabRunner: one migration (or a policy comparison) between two lab hosts, driven from
the controller over persistent SSH sessions.

It is the harness's run (`dq_agent.harness.run.Run`: scenario, policy plug-ins, progress
records, summary, integrity verdict, result JSON) with the two local QEMUs and the local
netns link swapped for QEMUs on the lab hosts and tc on the source's migration NIC. The
sessions stay open across runs, so a matrix pays the SSH handshake once per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from dq_agent.harness.errors import HarnessError, ScenarioError
from dq_agent.harness.guest import Console
from dq_agent.harness.policies import make_policy
from dq_agent.harness.qemu import VM
from dq_agent.harness.run import Run, RunOptions, _git_commit, appliance_dir
from dq_agent.harness.scenario import Scenario
from dq_agent.runner.enforcement import ENFORCERS
from dq_agent.runner.inventory import LabHost
from dq_agent.runner.remote import (
    RemoteVM,
    module_env,
    remote_accel,
    remote_qemu_version,
    resolve_qemu,
)
from dq_agent.runner.ssh import Session, SSHError
from dq_agent.schema import validate

log = logging.getLogger("dq_agent.runner")

REMOTE_CACHE = "/var/cache/dqlab/runner"


class RemoteLink:
    """tc htb on the source host's NIC towards the destination (the migration direction)."""

    def __init__(self, src: Session, src_host: LabHost, dst_host: LabHost) -> None:
        self.s = src
        self.src_ns, self.dst_ns = src_host.spec.name, dst_host.spec.name
        self.src_ip, self.dst_ip = src_host.migration_address, dst_host.migration_address
        self.rate_mbit = 0.0
        _, out, _ = src.run(f"ip -o route get {shlex.quote(self.dst_ip)}", check=True)
        words = out.split()
        if "dev" not in words:
            raise HarnessError(f"{src.name}: no route to the destination {self.dst_ip}")
        self.dev = words[words.index("dev") + 1]
        self.shaped = False

    def shape(self, rate_mbit: float) -> None:
        rate = f"{int(rate_mbit * 1000)}kbit"
        dev = shlex.quote(self.dev)
        self.shaped = True
        self.s.run(
            f"tc qdisc replace dev {dev} root handle 1: htb default 10 && "
            f"tc class replace dev {dev} parent 1: classid 1:10 htb rate {rate} ceil {rate}",
            check=True,
        )
        self.rate_mbit = rate_mbit
        log.info("%s: htb %s on %s", self.s.name, rate, self.dev)

    def unshape(self) -> None:
        if self.shaped:
            self.s.run(f"tc qdisc del dev {shlex.quote(self.dev)} root 2>/dev/null; true")
            self.shaped = False


def ensure_appliance(s: Session, local: Path, remote: str) -> None:
    """The appliance on the host: copied over SFTP only when missing."""
    files = ("vmlinuz", "initrd.gz")
    test = " && ".join(f"test -s {shlex.quote(remote)}/{f}" for f in files)
    if s.run(test)[0] == 0:
        return
    log.info("%s: copying the appliance to %s", s.name, remote)
    s.run(f"mkdir -p {shlex.quote(remote)}", check=True)
    for f in files:
        s.put(local / f, f"{remote}/{f}.part")
        s.run(f"mv -f {shlex.quote(remote)}/{f}.part {shlex.quote(remote)}/{f}", check=True)


class LabRun(Run):
    """The harness run with QEMUs on lab hosts (RAM compare needs local RAM files: off)."""

    def __init__(
        self,
        sc: Scenario,
        policy: Any,
        opts: RunOptions,
        link: RemoteLink,
        sessions: tuple[Session, Session],
        remote_appliance: str | None,
    ) -> None:
        self.out_dir = opts.out_dir
        opts = replace(opts, ram_compare=False, corrupt_page=None, out_dir=None)
        super().__init__(sc, policy, opts, link)  # type: ignore[arg-type]
        self.sessions = sessions
        self.remote_appliance = remote_appliance
        self.running_on: list[str] = []

    def _remote_vm(self, side: str, s: Session, accel: str, app: str, rundir: str) -> RemoteVM:
        append = " ".join(
            ["console=ttyS0", "quiet", "panic=-1", *self.sc.kernel_args(), *self.opts.extra_append]
        )
        vm = VM(
            name=side,
            argv_prefix=[],
            binary=self.opts.qemu,
            rundir=Path(rundir),
            accel=accel,
            memory_mib=self.sc.memory_mib,
            vcpus=len(self.sc.vcpus),
            kernel=f"{app}/vmlinuz",
            initrd=f"{app}/initrd.gz",
            append=append,
            incoming=side == "dst",
            firmware_dir=self.opts.firmware_dir,
        )
        return RemoteVM(s, vm, module_env(vm))

    async def _prepare_hosts(self, default_app: str) -> tuple[str, str]:
        """Appliance on both hosts, accelerator, version gate, `self.env`: what both modes
        do before the guest starts. Returns (remote appliance dir, accel)."""
        src_s, dst_s = self.sessions
        local_app = appliance_dir(self.opts)
        app = self.remote_appliance or f"{default_app}/{local_app.name}"
        for s in self.sessions:
            await asyncio.to_thread(ensure_appliance, s, local_app, app)
        accel = await asyncio.to_thread(
            remote_accel, src_s, self.opts.accel, self.opts.qemu, f"{app}/vmlinuz",
            f"{app}/initrd.gz",
        )  # fmt: skip
        versions = [
            remote_qemu_version(s, self.opts.qemu, accel, self.opts.allow_old_qemu)
            for s in self.sessions
        ]
        kernels = [s.run("uname -r", check=True)[1].strip() for s in self.sessions]
        self.env: dict[str, Any] = {
            "git_commit": _git_commit(),
            "host": src_s.name,
            "hosts": {"source": src_s.name, "destination": dst_s.name},
            "qemu_version": versions[0],
            "qemu_version_destination": versions[1],
            "qemu_binary": self.opts.qemu,
            "kernel_version": kernels[0],
            "kernel_version_destination": kernels[1],
            "accel": accel,
            "appliance": app,
            "runner": "dq_agent.runner (paramiko)",
        }
        return app, accel

    async def execute(self) -> dict[str, Any]:
        src_s, dst_s = self.sessions
        app, accel = await self._prepare_hosts(f"{REMOTE_CACHE}/appliance")
        rundirs = [f"/tmp/dqr-{self.run_id}-{side}" for side in ("src", "dst")]
        self.src = self._remote_vm("src", src_s, accel, app, rundirs[0])  # type: ignore[assignment]
        self.dst = self._remote_vm("dst", dst_s, accel, app, rundirs[1])  # type: ignore[assignment]
        consoles: list[Console] = []
        try:
            return await self._migrate(consoles)
        finally:
            for c in consoles:
                await c.close()
            await self.src.stop()
            await self.dst.stop()
            for s, d in zip(self.sessions, rundirs, strict=True):
                with contextlib.suppress(SSHError):
                    await asyncio.to_thread(s.run, f"rm -rf {shlex.quote(d)}")

    async def _alive(self, side: str, vm: Any, t_end: float) -> bool:
        # which hosts run the guest now: exactly one is the point of a migration
        self.running_on = [
            s.name
            for s, v in zip(self.sessions, (self.src, self.dst), strict=True)
            if await v.status() == "running"
        ]
        return await super()._alive(side, vm, t_end)

    def _document(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = super()._document(*args, **kwargs)
        link: Any = self.link
        doc["link"] = {
            "rate_bps": self.sc.link_mbit * 1e6,
            "tc": "htb",
            "source_host": link.src_ns,
            "destination_host": link.dst_ns,
            "dev": link.dev,
            "src_ip": link.src_ip,
            "dst_ip": link.dst_ip,
        }
        doc["summary"]["running_on_hosts"] = self.running_on
        self._decorate(doc)
        validate(doc)
        if self.out_dir:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / f"{self.run_id}.json").write_text(json.dumps(doc, indent=1))
        return doc

    def _decorate(self, doc: dict[str, Any]) -> None:
        """Mode-specific result fields (the libvirt mode adds who enforced the policy)."""
        doc["environment"]["via"] = "qemu"


VIAS = ("qemu", "libvirt")


def check_policies(policies: list[tuple[str, dict[str, Any]]], via: str) -> None:
    """Every policy and its params valid for this mode (ScenarioError naming the field)."""
    for name, params in policies:
        pol = make_policy(name, params)
        if via == "libvirt":
            from dq_agent.runner.libvirt_run import check_policy

            check_policy(pol)


class LabRunner:
    """Persistent sessions to one source and one destination host; runs scenarios."""

    def __init__(
        self,
        src: LabHost,
        dst: LabHost,
        remote_appliance: str | None = None,
        via: str = "qemu",
        dirty_quota_by: str = "auto",
    ) -> None:
        if via not in VIAS:
            raise ScenarioError(f"--via: expected one of {', '.join(VIAS)}, got {via!r}")
        if dirty_quota_by not in ENFORCERS:
            raise ScenarioError(
                f"--dirty-quota-by: expected one of {', '.join(ENFORCERS)}, got {dirty_quota_by!r}"
            )
        self.src_host, self.dst_host = src, dst
        self.remote_appliance = remote_appliance
        self.via, self.dirty_quota_by = via, dirty_quota_by
        self.src = Session(src.spec)
        self.dst = Session(dst.spec)
        self.virt: tuple[Any, Any] | None = None  # libvirt connections, opened on first use

    def __enter__(self) -> LabRunner:
        self.src.connect()
        try:
            self.dst.connect()
        except BaseException:
            self.src.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for v in self.virt or ():
            v.close()
        self.virt = None
        self.src.close()
        self.dst.close()

    def _virt(self) -> tuple[Any, Any]:
        """One tunnelled libvirt connection per host, kept across runs like the sessions."""
        from dq_agent.runner.virt import VirtHost

        if self.virt is None:
            src = VirtHost(self.src, self.src_host.libvirt_socket)
            try:
                self.virt = (src, VirtHost(self.dst, self.dst_host.libvirt_socket))
            except BaseException:
                src.close()
                raise
        return self.virt

    def run(
        self,
        sc: Scenario,
        policy: str,
        params: dict[str, Any] | None = None,
        opts: RunOptions | None = None,
    ) -> dict[str, Any]:
        check_policies([(policy, params or {})], self.via)  # before anything starts
        pol = make_policy(policy, params)
        opts = opts or RunOptions()
        opts = replace(opts, qemu=resolve_qemu(self.src, opts.qemu))
        link = RemoteLink(self.src, self.src_host, self.dst_host)
        try:
            link.shape(sc.link_mbit)
            run = self._make_run(sc, pol, opts, link)
            run.run_id = f"{sc.name}-{pol.name}-{uuid.uuid4().hex[:8]}"
            return asyncio.run(run.execute())
        finally:
            with contextlib.suppress(SSHError):
                link.unshape()

    def _make_run(self, sc: Scenario, pol: Any, opts: RunOptions, link: RemoteLink) -> LabRun:
        sessions = (self.src, self.dst)
        if self.via == "qemu":
            return LabRun(sc, pol, opts, link, sessions, self.remote_appliance)
        from dq_agent.runner.enforcement import AgentEnforced, agent_runs
        from dq_agent.runner.libvirt_run import LibvirtRun, enforcer_for

        agent = pol.name == "dirty-quota" and agent_runs(self.src)
        enforced_by = enforcer_for(pol, self.dirty_quota_by, agent, self.src.name)
        if enforced_by == "dq-agent":
            pol = AgentEnforced()
        log.info("%s: policy %s enforced by %s", self.src.name, pol.name, enforced_by)
        virt = self._virt()
        return LibvirtRun(sc, pol, opts, link, sessions, self.remote_appliance, virt, enforced_by)

    def compare(
        self,
        sc: Scenario,
        policies: list[tuple[str, dict[str, Any]]],
        opts: RunOptions | None = None,
    ) -> list[dict[str, Any]]:
        check_policies(policies, self.via)
        return [self.run(sc, n, p, opts) for n, p in policies]
