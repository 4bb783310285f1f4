"""Two real libvirtd daemons on this host, each in its own network + mount namespace.

Debian 12's monolithic libvirtd runs without systemd when qemu.conf has user/group root,
security_driver "none", no cgroup controllers and no namespaces (FACTS.md). Each daemon
gets private /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
/var/log/libvirt (bind mounts inside its own mount namespace), so clients reach it at
`qemu+unix:///system?socket=<root>/<host>/run/libvirt-sock`. A veth pair joins the two
network namespaces on a per-run /30 from the agent range 198.18.32.0/20; htb on the
source side shapes the migration link. Everything is torn down by `close()`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

AGENT_NET = ipaddress.ip_network("198.18.32.0/20")
MIGRATION_PORT = 49152


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


@dataclass
class Host:
    name: str
    netns: str
    addr: str
    root: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.root}/run/libvirt-sock"

    @property
    def admin_uri(self) -> str:
        """virt-admin's view of this daemon (its connected clients, with their pids)."""
        return f"libvirtd:///system?socket={self.root}/run/libvirt-admin-sock"


def _per_run_subnet(suffix: str, net: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    subnets = list(net.subnets(new_prefix=30))
    return subnets[int(suffix, 16) % len(subnets)]


class LibvirtLab:
    def __init__(
        self,
        root: Path,
        rate_mbit: int = 40,
        caps_cache: Path | None = None,
        net: ipaddress.IPv4Network = AGENT_NET,
        prefix: str = "dqag",
    ) -> None:
        """`net`/`prefix`: another test area's address range and name prefix (faults)."""
        self.suffix = f"{os.getpid() & 0xFFFF:04x}{int(time.time() * 1000) & 0xFFF:03x}"
        self.root = root
        self.rate_mbit = rate_mbit
        a, b = list(_per_run_subnet(self.suffix, net).hosts())
        self.src = Host("src", f"{prefix}-src-{self.suffix}", str(a), root / "src")
        self.dst = Host("dst", f"{prefix}-dst-{self.suffix}", str(b), root / "dst")
        self._veth = f"{prefix[:3]}{self.suffix}"[:12]
        self._made_netns: list[str] = []
        # libvirtd probes QEMU's capabilities for ~15 s on a cold cache: keep it across runs.
        self.caps_cache = caps_cache

    # -- setup ------------------------------------------------------------------------
    def start(self) -> LibvirtLab:
        try:
            self._ensure_qemu_user()
            self._network()
            for h in (self.src, self.dst):
                self._daemon(h)
            for h in (self.src, self.dst):
                self._wait_socket(h)
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def _ensure_qemu_user() -> None:
        # libvirt 9.0 resolves its compiled-in default user even when qemu.conf says root.
        if sh("getent", "passwd", "libvirt-qemu", check=False).returncode != 0:
            sh(
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "libvirt-qemu",
            )

    def _network(self) -> None:
        for h in (self.src, self.dst):
            sh("ip", "netns", "add", h.netns)
            self._made_netns.append(h.netns)
            sh("ip", "-n", h.netns, "link", "set", "lo", "up")
        va, vb = self._veth + "a", self._veth + "b"
        sh(
            "ip",
            "link",
            "add",
            va,
            "netns",
            self.src.netns,
            "type",
            "veth",
            "peer",
            "name",
            vb,
            "netns",
            self.dst.netns,
        )
        for h, dev in ((self.src, va), (self.dst, vb)):
            sh("ip", "-n", h.netns, "addr", "add", f"{h.addr}/30", "dev", dev)
            sh("ip", "-n", h.netns, "link", "set", dev, "up")
        # Shape the source's egress: that is the migration stream.
        sh(
            "ip",
            "netns",
            "exec",
            self.src.netns,
            "tc",
            "qdisc",
            "add",
            "dev",
            va,
            "root",
            "handle",
            "1:",
            "htb",
            "default",
            "10",
        )
        sh(
            "ip",
            "netns",
            "exec",
            self.src.netns,
            "tc",
            "class",
            "add",
            "dev",
            va,
            "parent",
            "1:",
            "classid",
            "1:10",
            "htb",
            "rate",
            f"{self.rate_mbit}mbit",
            "ceil",
            f"{self.rate_mbit}mbit",
        )

    def _daemon(self, h: Host) -> None:
        dirs = {
            "etc": "/etc/libvirt",
            "run": "/run/libvirt",
            "lib": "/var/lib/libvirt",
            "cache": "/var/cache/libvirt",
            "log": "/var/log/libvirt",
        }
        for d in dirs:
            (h.root / d).mkdir(parents=True, exist_ok=True)
        if self.caps_cache is not None and not (h.root / "cache").is_symlink():
            (self.caps_cache / h.name).mkdir(parents=True, exist_ok=True)
            (h.root / "cache").rmdir()
            (h.root / "cache").symlink_to(self.caps_cache / h.name)
        (h.root / "etc" / "libvirtd.conf").write_text(
            f'host_uuid = "{uuid.uuid4()}"\n'
            'auth_unix_rw = "none"\nauth_unix_ro = "none"\nunix_sock_rw_perms = "0700"\n'
            'log_outputs = "3:stderr"\n'
        )
        (h.root / "etc" / "qemu.conf").write_text(
            'user = "root"\ngroup = "root"\ndynamic_ownership = 0\n'
            'security_driver = "none"\ncgroup_controllers = [ ]\nnamespaces = [ ]\n'
            'stdio_handler = "file"\nremember_owner = 0\n'
        )
        binds = " ".join(f"mount --bind {h.root / d} {target};" for d, target in dirs.items())
        mkdirs = " ".join(dirs.values())
        script = f"mkdir -p {mkdirs}; {binds} exec libvirtd --pid-file {h.root / 'libvirtd.pid'}"
        log = open(h.root / "libvirtd.log", "wb")  # noqa: SIM115 - lives as long as the daemon
        h.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                h.netns,
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_socket(self, h: Host, timeout_s: float = 30.0) -> None:
        sock = h.root / "run" / "libvirt-sock"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if h.proc is not None and h.proc.poll() is not None:
                raise RuntimeError(
                    f"libvirtd {h.name} exited: {(h.root / 'libvirtd.log').read_text()[-2000:]}"
                )
            if sock.exists():
                r = sh("virsh", "-c", h.uri, "version", check=False)
                if r.returncode == 0:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"libvirtd {h.name} not up after {timeout_s}s")

    def restart_daemon(self, h: Host) -> None:
        """Kill one libvirtd (its QEMUs keep running) and start it again on the same state."""
        if h.proc is not None and h.proc.poll() is None:
            os.killpg(h.proc.pid, 9)
            h.proc.wait(10)
        (h.root / "run" / "libvirt-sock").unlink(missing_ok=True)
        self._daemon(h)
        self._wait_socket(h)

    # -- teardown ---------------------------------------------------------------------
    def close(self) -> None:
        for h in (self.src, self.dst):
            # Kill the QEMUs these daemons started (their pidfiles sit in our run dir).
            for pidfile in (
                (h.root / "run" / "qemu").glob("*.pid") if (h.root / "run").exists() else ()
            ):
                with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                    os.kill(int(pidfile.read_text().strip()), 9)
            if h.proc is not None and h.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(h.proc.pid, 15)
                try:
                    h.proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(h.proc.pid, 9)
                    h.proc.wait(5)
        for ns in self._made_netns:
            sh("ip", "netns", "del", ns, check=False)
        self._made_netns.clear()

    def __enter__(self) -> LibvirtLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def domain_xml(
    name: str,
    kernel: Path,
    emulator: str,
    memory_mib: int = 256,
    vcpus: int = 2,
    cmdline: str = "",
    initrd: Path | None = None,
    firmware_dirs: tuple[str, ...] = (),
) -> str:
    """`firmware_dirs`: extra -L paths, for a QEMU built without Debian's firmware path
    (the patched QEMU under $DQ_CACHE) that must still find SeaBIOS and option ROMs."""
    initrd_xml = f"<initrd>{initrd}</initrd>" if initrd else ""
    args = "".join(f"<qemu:arg value='-L'/><qemu:arg value='{d}'/>" for d in firmware_dirs)
    extra = f"<qemu:commandline>{args}</qemu:commandline>" if args else ""
    cmdline_xml = f"<cmdline>{cmdline}</cmdline>" if cmdline else ""
    return f"""<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>{initrd_xml}{cmdline_xml}
  </os>
  <features><acpi/></features>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{emulator}</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  {extra}
</domain>"""


def cleanup_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
