"""QEMU on a lab host, started and stopped over its SSH session, with QMP and the serial
console tunnelled to local unix sockets: the harness's VM interface, remotely."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import time
from pathlib import Path

from qemu.qmp import QMPClient

from dq_agent.harness.errors import HarnessError
from dq_agent.harness.qemu import MIN_TCG_VERSION, VM, QMPCalls
from dq_agent.runner.ssh import Session, SSHError

log = logging.getLogger("dq_agent.runner")


def remote_qemu_version(s: Session, binary: str, accel: str, allow_old: bool) -> str:
    """Same gate as the harness: QEMU < 9.0 under TCG loses dirty pages (03bfc2188f)."""
    rc, out, err = s.run(f"{shlex.quote(binary)} --version", timeout=20)
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out)
    if rc != 0 or not m:
        raise HarnessError(f"{s.name}: cannot run {binary}: {(err or out).strip()[:200]}")
    v = (int(m[1]), int(m[2]))
    text = f"{m[1]}.{m[2]}.{m[3]}"
    if accel == "tcg" and v < MIN_TCG_VERSION and not allow_old:
        raise HarnessError(
            f"{s.name}: qemu {text} loses dirty pages under TCG (fixed in 9.0, upstream "
            "03bfc2188f); refusing"
        )
    return text


PATCHED_QEMU = "/opt/dq-qemu/bin/qemu-system-x86_64"  # installed by roles/dq_qemu
DISTRO_QEMU = "/usr/bin/qemu-system-x86_64"


def resolve_qemu(s: Session, requested: str) -> str:
    """`auto`: the patched QEMU when the source host has it, else the distro's (the rule
    of roles/dq_lab_guest's `dq_lab_guest_emulator: auto`). Logged."""
    if requested != "auto":
        return requested
    qemu = PATCHED_QEMU if s.run(f"test -x {PATCHED_QEMU}")[0] == 0 else DISTRO_QEMU
    log.info("%s: --qemu auto: %s", s.name, qemu)
    return qemu


def remote_accel(s: Session, requested: str, binary: str, kernel: str, initrd: str) -> str:
    """`auto`: KVM only if the host's KVM actually boots our appliance within 15 s (an
    openable /dev/kvm is not enough: nested/PVM KVM can hang), else TCG. Logged."""
    if requested in ("kvm", "tcg"):
        return requested
    accel = "tcg"
    if s.run("test -r /dev/kvm -a -w /dev/kvm")[0] == 0:
        probe = (
            f"timeout 15 {shlex.quote(binary)} -accel kvm -m 128 -nodefaults -display none "
            f"-no-reboot -kernel {shlex.quote(kernel)} -initrd {shlex.quote(initrd)} "
            "-serial stdio -append 'console=ttyS0 quiet panic=-1 dq.t0=idle' "
            "2>/dev/null | grep -m1 -q 'DQ BOOT'"
        )
        if s.run(probe, timeout=30)[0] == 0:
            accel = "kvm"
    log.info("%s: accelerator %s (requested %s)", s.name, accel, requested)
    return accel


class RemoteVM(QMPCalls):
    """One QEMU on a lab host (daemonized, pidfile in a per-run remote directory)."""

    def __init__(self, session: Session, vm: VM, env: dict[str, str]) -> None:
        self.s, self.vm, self.env = session, vm, env
        self.name = vm.name
        self.mem_file: Path | None = None  # RAM stays on the host: no controller-side diff
        self.paused_after_incoming = vm.paused_after_incoming
        self.qmp = QMPClient(f"{session.name}-{vm.name}")
        self.serial_path = ""
        self.started = False
        self._dead = False
        self._bridges: list[str] = []  # local tunnel ends, closed by stop()

    @property
    def rdir(self) -> str:
        return str(self.vm.rundir)

    @property
    def pidfile(self) -> str:
        return f"{self.rdir}/{self.name}.pid"

    async def start(self) -> None:
        argv = [*self.vm.argv(), "-daemonize", "-pidfile", self.pidfile]
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        cmd = (
            f"mkdir -p {shlex.quote(self.rdir)} && "
            f"env {envs} {shlex.join(argv)} >{shlex.quote(self.rdir)}/{self.name}.log 2>&1"
        )
        self.started = True
        rc, _, _ = await asyncio.to_thread(self.s.run, cmd, 60)
        if rc != 0:
            _, tail, _ = self.s.run(f"tail -c 400 {shlex.quote(self.rdir)}/{self.name}.log")
            raise HarnessError(f"{self.s.name}: qemu {self.name} failed to start: {tail.strip()}")
        qmp_local = self.s.open_unix_socket(self.vm.qmp_path)
        self.serial_path = self.s.open_unix_socket(self.vm.serial_path)
        self._bridges = [qmp_local, self.serial_path]
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
        deadline = time.monotonic() + 15
        while True:
            try:
                await self.qmp.connect(qmp_local)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{self.s.name}: qemu {self.name}: no QMP") from None
                await asyncio.sleep(0.1)

    def alive(self) -> bool:
        if not self.started or self._dead:
            return False
        rc, _, _ = self.s.run(f"kill -0 $(cat {shlex.quote(self.pidfile)} 2>/dev/null) 2>/dev/null")
        return rc == 0

    async def status(self) -> str:
        if not await asyncio.to_thread(self.alive):
            return "dead"
        try:
            r = await self.query("query-status", 5)
            return str(r["status"])
        except Exception:
            return "unknown"

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; safe to call twice."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.qmp.disconnect(), 2)
        for local in self._bridges:
            self.s.close_unix_socket(local)
        self._bridges = []
        if not self.started or self._dead:
            return
        pid = f"$(cat {shlex.quote(self.pidfile)} 2>/dev/null)"
        script = (
            f'p={pid}; [ -n "$p" ] || exit 0; kill $p 2>/dev/null; '
            "for i in $(seq 50); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; "
            "kill -9 $p 2>/dev/null; exit 0"
        )
        with contextlib.suppress(SSHError):
            await asyncio.to_thread(self.s.run, script, 20)
        self._dead = True


def module_env(vm: VM) -> dict[str, str]:
    """The harness's extra environment for an extracted QEMU (QEMU_MODULE_DIR)."""
    return {k: v for k, v in vm.env().items() if os.environ.get(k) != v}
