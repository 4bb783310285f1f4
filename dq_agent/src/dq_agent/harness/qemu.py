"""QEMU processes for the harness: version gate, accelerator choice, VM lifecycle + QMP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient

from dq_agent.harness.errors import HarnessError, QMPCommandError, QMPError

log = logging.getLogger("dq_agent.harness")

DEFAULT_QEMU = "/usr/bin/qemu-system-x86_64"
QMP_TIMEOUT_S = 6.0  # a healthy QEMU answers in milliseconds; a wedged one must not hang us
MIN_TCG_VERSION = (9, 0)  # upstream 03bfc2188f: older TCG loses dirty pages in migration


def qemu_version(binary: str) -> tuple[int, int, int]:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except OSError as e:
        raise HarnessError(f"qemu: cannot run {binary}: {e.strerror}") from e
    m = re.search(r"version (\d+)\.(\d+)\.(\d+)", out.stdout)
    if not m:
        raise HarnessError(f"qemu: cannot read the version of {binary}")
    return int(m[1]), int(m[2]), int(m[3])


def check_version(binary: str, accel: str, allow_old: bool) -> str:
    """The version string; refuses QEMU < 9.0 under TCG unless explicitly allowed."""
    v = qemu_version(binary)
    text = ".".join(map(str, v))
    if accel == "tcg" and v[:2] < MIN_TCG_VERSION:
        if not allow_old:
            raise HarnessError(
                f"qemu {text} ({binary}) loses dirty pages under TCG (fixed in 9.0, upstream "
                "03bfc2188f); refusing. Use QEMU >= 9.0 or --allow-old-qemu (positive control)"
            )
        log.warning("QEMU %s under TCG: dirty pages may be lost (allowed by override)", text)
    return text


def _probe_cache(binary: str) -> Path:
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    st = os.stat(binary)
    key = f"{boot_id}-{st.st_ino}-{int(st.st_mtime)}"
    return Path(os.environ.get("DQ_CACHE", "/var/cache/dqlab")) / "kvm-probe" / key


def kvm_boots_guest(binary: str, kernel: str, initrd: str, timeout: float = 15.0) -> bool:
    """Can KVM here actually run our guest? /dev/kvm opening is not enough (a PVM-backed
    /dev/kvm creates VMs whose kernels hang), so boot the appliance once and wait for its
    first line. Cached per host boot and QEMU binary."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    cache = _probe_cache(binary)
    if cache.exists():
        return cache.read_text().strip() == "yes"
    argv = [
        binary,
        "-accel",
        "kvm",
        "-m",
        "128",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-kernel",
        kernel,
        "-initrd",
        initrd,
        "-serial",
        "stdio",
        "-append",
        "console=ttyS0 quiet panic=-1 dq.t0=idle",
    ]
    ok = False
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert p.stdout is not None
        os.set_blocking(p.stdout.fileno(), False)
        deadline, buf = time.monotonic() + timeout, b""
        while time.monotonic() < deadline and p.poll() is None:
            with contextlib.suppress(BlockingIOError, TypeError):
                buf += p.stdout.read(4096) or b""
            if b"DQ BOOT" in buf:
                ok = True
                break
            time.sleep(0.1)
    finally:
        p.kill()
        p.wait(timeout=10)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("yes\n" if ok else "no\n")
    return ok


def choose_accel(requested: str, binary: str, kernel: str, initrd: str) -> str:
    if requested in ("kvm", "tcg"):
        accel = requested
    elif kvm_boots_guest(binary, kernel, initrd):
        accel = "kvm"
    else:
        accel = "tcg"
    log.info("accelerator: %s (requested %s)", accel, requested)
    return accel


class QMPCalls:
    """Bounded, typed QMP calls over `self.qmp`: shared by the local VM and the runner's
    RemoteVM, so a wedged or misbehaving QEMU fails the same way wherever it runs."""

    name: str
    qmp: QMPClient

    async def cmd(self, name: str, timeout: float = QMP_TIMEOUT_S, **args: Any) -> Any:
        """One QMP command, bounded in time; every failure is a QMPError (a HarnessError)."""
        try:
            return await asyncio.wait_for(self.qmp.execute(name, args or None), timeout)
        except ExecuteError as e:
            raise QMPCommandError(name, str(e.error.error.desc)) from None
        except TimeoutError:
            raise QMPError(f"qmp {name} ({self.name}): no answer within {timeout:g} s") from None
        except Exception as e:  # dropped connection, undecodable reply, client state
            raise QMPError(f"qmp {name} ({self.name}): {type(e).__name__}: {e}") from None

    async def query(self, name: str, timeout: float = QMP_TIMEOUT_S) -> dict[str, Any]:
        """A query command whose reply must be a JSON object."""
        r = await self.cmd(name, timeout)
        if not isinstance(r, dict):
            raise QMPError(f"qmp {name} ({self.name}): reply is {type(r).__name__}, not an object")
        return r


@dataclass
class VM(QMPCalls):
    """One QEMU process in a namespace, with its QMP and serial sockets in `rundir`."""

    name: str
    argv_prefix: list[str]  # e.g. ["ip", "netns", "exec", NS]
    binary: str
    rundir: Path
    accel: str
    memory_mib: int
    vcpus: int
    kernel: str
    initrd: str
    append: str
    incoming: bool = False
    paused_after_incoming: bool = False
    mem_file: Path | None = None  # guest RAM in a shared file (host-side corruption control)
    firmware_dir: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    qmp: QMPClient = field(init=False)

    @property
    def qmp_path(self) -> str:
        return str(self.rundir / f"{self.name}-qmp.sock")

    @property
    def serial_path(self) -> str:
        return str(self.rundir / f"{self.name}-serial.sock")

    def argv(self) -> list[str]:
        a = [
            *self.argv_prefix,
            self.binary,
            "-name",
            self.name,
            "-accel",
            self.accel,
            "-machine",
            "pc",
            "-cpu",
            "qemu64",
            "-smp",
            str(self.vcpus),
            "-m",
            f"{self.memory_mib}M",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
            "-kernel",
            self.kernel,
            "-initrd",
            self.initrd,
            "-append",
            self.append,
            "-chardev",
            f"socket,id=ser0,path={self.serial_path},server=on,wait=off",
            "-serial",
            "chardev:ser0",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
        ]
        fw = [self.firmware_dir] if self.firmware_dir else []
        if not fw and not Path(self.binary).resolve().is_relative_to("/usr"):
            # an extracted QEMU has no firmware of its own: the host's (Debian paths)
            fw = [d for d in ("/usr/share/qemu", "/usr/share/seabios") if Path(d).is_dir()]
        for d in fw:
            a += ["-L", d]
        if self.mem_file:
            a += [
                "-object",
                f"memory-backend-file,id=ram0,size={self.memory_mib}M,"
                f"mem-path={self.mem_file},share=on",
                "-machine",
                "memory-backend=ram0",
            ]
        if self.incoming:
            a += ["-incoming", "defer"]
            if self.paused_after_incoming:
                a += ["-S"]
        return a

    def env(self) -> dict[str, str]:
        """An extracted (not installed) QEMU keeps its accelerator modules beside it."""
        env = dict(os.environ)
        root = Path(self.binary).resolve().parent.parent  # <root>/usr/bin/qemu-system-*
        moddir = root / "lib" / "x86_64-linux-gnu" / "qemu"
        if root != Path("/usr") and moddir.is_dir():
            env["QEMU_MODULE_DIR"] = str(moddir)
        return env

    async def start(self) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        log_file = open(self.rundir / f"{self.name}.log", "wb")  # noqa: SIM115 (kept by proc)
        self.proc = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # Ctrl-C reaches us, not QEMU: cleanup decides
        )
        log_file.close()
        self.qmp = QMPClient(self.name)
        # qemu.qmp logs every refused attempt as an error; the socket appears a bit later
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
        deadline = time.monotonic() + 15
        while True:
            if self.proc.poll() is not None:
                raise HarnessError(f"qemu {self.name} exited: {self.log_tail()}")
            try:
                await self.qmp.connect(self.qmp_path)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise HarnessError(f"qemu {self.name}: no QMP socket") from None
                await asyncio.sleep(0.05)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.rundir / f"{self.name}.log").read_text(errors="replace")[-400:].strip()
        return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def status(self) -> str:
        if not self.alive():
            return "dead"
        try:
            r = await self.query("query-status", 5)
            return str(r["status"])
        except Exception:
            return "unknown"

    async def stop(self) -> None:
        """End QEMU (SIGTERM: it exits cleanly and fast, also when QMP is wedged or its
        tasks were cancelled by Ctrl-C); kill after a grace period. Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.qmp.disconnect(), 1)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.mem_file:
            with contextlib.suppress(OSError):
                self.mem_file.unlink()
