"""libvirt on a lab host, reached through the host's existing SSH session.

The daemon's unix socket (`/run/libvirt/virtqemud-sock` or `libvirt-sock`, or the
inventory's `dq_libvirt_socket`) is bridged to a local unix socket by a
`direct-streamlocal` channel (`Session.open_unix_socket`), and libvirt-python connects
to it with `qemu+unix:///system?socket=<local>`: no libvirt TCP/TLS listener, no second
SSH login, the same host key checking as every other command.

`LibvirtDomain` is the guest as the harness sees a VM (`cmd`, `query`, `status`, `stop`):
QMP goes through libvirt's monitor passthrough (`virDomainQemuMonitorCommand`), so the
harness's policy plug-ins and progress records work unchanged on a libvirt-managed QEMU.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shlex
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import libvirt
import libvirt_qemu

from dq_agent.harness.errors import HarnessError, QMPCommandError, QMPError
from dq_agent.harness.qemu import QMP_TIMEOUT_S
from dq_agent.runner.ssh import Session

log = logging.getLogger("dq_agent.runner")

LIBVIRT_SOCKETS = ("/run/libvirt/virtqemud-sock", "/run/libvirt/libvirt-sock")
POLICY_NS = "urn:dqlab:migration:1"  # contracts §5: the run's declared policy
POLICY_KEY = "dq"
DECLARABLE = ("none", "auto-converge", "dirty-quota")
SERIAL_DIR = "/var/lib/libvirt/qemu"  # writable by libvirt's QEMU user on every host
LIBVIRT_CALL_S = 30.0  # bound for one libvirt RPC made from the event loop


def _ignore_libvirt_errors(_ctx: object, _err: object) -> None:
    """libvirt-python prints every error to stderr by default; ours are raised instead."""


libvirt.registerErrorHandler(_ignore_libvirt_errors, None)


def _msg(e: BaseException) -> str:
    if isinstance(e, libvirt.libvirtError):
        return str(e.get_error_message() or e).strip()
    return str(e).strip() or type(e).__name__


def find_socket(s: Session, configured: str | None) -> str:
    """The daemon's socket on the host: the configured one, else the modular virtqemud's,
    else the monolithic libvirtd's."""
    candidates = [configured] if configured else list(LIBVIRT_SOCKETS)
    for path in candidates:
        if s.run(f"test -S {shlex.quote(path)}")[0] == 0:
            return path
    raise HarnessError(
        f"{s.name}: no libvirt socket at {' or '.join(candidates)} "
        "(is libvirtd running? inventory: dq_libvirt_socket)"
    )


class VirtHost:
    """One libvirt connection to a lab host, tunnelled over its SSH session."""

    def __init__(self, s: Session, socket_path: str | None) -> None:
        self.s, self.name = s, s.name
        self.remote_socket = find_socket(s, socket_path)
        self.local_socket = s.open_unix_socket(self.remote_socket)
        self.uri = f"qemu+unix:///system?socket={self.local_socket}"
        # Two connections (two channels through the one bridge): `conn` for everything
        # short, `job` only for the migration itself. Through the tunnel, a call made on
        # the connection whose migrate3 is in flight stalled until the migration ended
        # (measured: 9 s; on a direct socket it did not), so polls never share it.
        try:
            self.conn: Any = libvirt.open(self.uri)
            self.job: Any = libvirt.open(self.uri)
        except libvirt.libvirtError as e:
            self.close()
            raise HarnessError(f"{s.name}: libvirt at {self.remote_socket}: {_msg(e)}") from None
        log.info("%s: libvirt %s through the tunnel", s.name, self.remote_socket)

    def version(self) -> str:
        v = int(self.conn.getLibVersion())
        return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"

    def lookup(self, name: str) -> Any:
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError:
            return None

    def close(self) -> None:
        for c in (getattr(self, "job", None), getattr(self, "conn", None)):
            if c is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    c.close()
        self.s.close_unix_socket(self.local_socket)


def domain_xml(
    name: str,
    *,
    accel: str,
    emulator: str,
    memory_mib: int,
    vcpus: int,
    kernel: str,
    initrd: str,
    cmdline: str,
    serial: str,
    firmware_dirs: tuple[str, ...] = (),
) -> str:
    """The lab guest's domain (the shape of roles/dq_lab_guest's guest.xml.j2, which is the
    harness's QEMU command line: pc machine with ACPI (libvirt 9 passes -no-acpi without
    it, which QEMU 10 refuses), qemu64, direct kernel boot, serial on a unix socket, no
    balloon), plus `-L` for a QEMU that has no firmware path of its own."""
    args = "".join(f"<qemu:arg value={quoteattr(v)}/>" for d in firmware_dirs for v in ("-L", d))
    extra = f"\n  <qemu:commandline>{args}</qemu:commandline>" if args else ""
    return f"""<domain type='{"kvm" if accel == "kvm" else "qemu"}' \
xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{int(memory_mib)}</memory>
  <vcpu>{int(vcpus)}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(kernel)}</kernel>
    <initrd>{escape(initrd)}</initrd>
    <cmdline>{escape(cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{escape(emulator)}</emulator>
    <serial type='unix'><source mode='bind' path={quoteattr(serial)}/><target port='0'/></serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>{extra}
</domain>"""


class LibvirtDomain:
    """The guest on one host, as the harness sees a VM (QMP via libvirt passthrough)."""

    def __init__(self, host: VirtHost, name: str, serial: str) -> None:
        self.host, self.name, self.serial = host, name, serial
        self.serial_path = ""  # local end of the serial tunnel, once opened
        self.mem_file = None  # RAM stays on the host: no controller-side compare
        self.paused_after_incoming = False

    async def _call(self, fn: Any, timeout: float = LIBVIRT_CALL_S) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(fn), timeout)

    async def define_and_start(self, xml: str, policy: str) -> None:
        """Define, start, then declare the run's policy on the live definition (and the
        persistent one, which travels with the migration) and read it back."""
        c = self.host.conn

        def go() -> None:
            dom = c.defineXML(xml)
            dom.create()
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
            body = f"<migration policy={quoteattr(policy)}/>"
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, body, POLICY_KEY, POLICY_NS, flags)
            got = dom.metadata(
                libvirt.VIR_DOMAIN_METADATA_ELEMENT, POLICY_NS, libvirt.VIR_DOMAIN_AFFECT_LIVE
            )
            if f'policy="{policy}"' not in got:
                raise HarnessError(f"metadata does not declare policy {policy}: {got[:200]}")

        try:
            await self._call(go, 90)
        except (libvirt.libvirtError, TimeoutError) as e:
            raise HarnessError(f"{self.host.name}: domain {self.name}: {_msg(e)}") from None
        log.info("%s: domain %s started, declares policy %s", self.host.name, self.name, policy)

    def open_serial(self) -> str:
        self.serial_path = self.host.s.open_unix_socket(self.serial)
        return self.serial_path

    async def serial_exists(self) -> bool:
        cmd = f"test -S {shlex.quote(self.serial)}"
        rc, _, _ = await asyncio.to_thread(self.host.s.run, cmd, 20)
        return rc == 0

    async def cmd(self, name: str, timeout: float = QMP_TIMEOUT_S, **args: Any) -> Any:
        """One QMP command through libvirt; failures are typed like the harness's."""
        req = json.dumps({"execute": name, **({"arguments": args} if args else {})})
        where = f"qmp {name} ({self.host.name})"

        def go() -> str:
            dom = self.host.lookup(self.name)
            if dom is None:
                raise QMPError(f"{where}: no domain {self.name}")
            return str(libvirt_qemu.qemuMonitorCommand(dom, req, 0))

        try:
            text = await self._call(go, timeout)
        except TimeoutError:
            raise QMPError(f"{where}: no answer within {timeout:g} s") from None
        except libvirt.libvirtError as e:
            raise QMPError(f"{where}: {_msg(e)}") from None
        try:
            reply = json.loads(text)
        except ValueError:
            raise QMPError(f"{where}: undecodable reply") from None
        if not isinstance(reply, dict):
            raise QMPError(f"{where}: reply is not an object")
        if "error" in reply:
            err = reply["error"]
            raise QMPCommandError(name, str(err.get("desc", err) if isinstance(err, dict) else err))
        return reply.get("return")

    async def query(self, name: str, timeout: float = QMP_TIMEOUT_S) -> dict[str, Any]:
        r = await self.cmd(name, timeout)
        if not isinstance(r, dict):
            raise QMPError(f"qmp {name} ({self.host.name}): reply is not an object")
        return r

    async def status(self) -> str:
        """running | inmigrate | paused | dead (no such domain or not active) | unknown."""

        def go() -> str:
            dom = self.host.lookup(self.name)
            if dom is None:
                return "dead"
            state, reason = dom.state()
            if state == libvirt.VIR_DOMAIN_RUNNING:
                return "running"
            if state == libvirt.VIR_DOMAIN_PAUSED:
                incoming = reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION
                return "inmigrate" if incoming else "paused"
            return "dead"

        try:
            return str(await self._call(go, 10))
        except (libvirt.libvirtError, TimeoutError):
            return "unknown"

    async def stop(self) -> None:
        """Destroy and undefine the domain on this host, if it is there; safe to repeat."""

        def go() -> None:
            dom = self.host.lookup(self.name)
            if dom is None:
                return
            with contextlib.suppress(libvirt.libvirtError):
                if dom.isActive():
                    dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefine()

        with contextlib.suppress(Exception):
            await self._call(go, LIBVIRT_CALL_S)
        if self.serial_path:
            self.host.s.close_unix_socket(self.serial_path)
            self.serial_path = ""


def job_reply(stats: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    """libvirt's job statistics (virDomainGetJobStats) in the shape of QEMU's
    query-migrate reply: what the harness's progress records and summary read."""
    page = int(stats.get("memory_page_size", 4096) or 4096)
    return {
        "status": status,
        "total-time": stats.get("time_elapsed"),
        ("downtime" if status == "completed" else "expected-downtime"): stats.get("downtime"),
        "setup-time": stats.get("setup_time"),
        "ram": {
            "transferred": stats.get("memory_processed", stats.get("data_processed", 0)),
            "remaining": stats.get("memory_remaining", 0),
            "dirty-sync-count": stats.get("memory_iteration", 0),
            "dirty-pages-rate": stats.get("memory_dirty_rate", 0),
            "mbps": stats.get("memory_bps", 0) * 8 / 1e6,
            "page-size": page,
        },
        "cpu-throttle-percentage": stats.get("auto_converge_throttle", 0),
    }


def completed_reply(stats: dict[str, Any]) -> dict[str, Any]:
    """For when the source QEMU was gone before the last poll saw `completed`."""
    return job_reply(stats, "completed")
