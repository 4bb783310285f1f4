"""Persistent SSH sessions to lab hosts: commands, SFTP, and tunnelled unix sockets.

One paramiko transport per host carries every command, one SFTP channel and any number of
`direct-streamlocal@openssh.com` channels (a remote QEMU's QMP or serial socket bridged
to a local unix socket), so a matrix of many migrations pays the handshake once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

log = logging.getLogger("dq_agent.runner")

CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_S = 15
MAX_CMD_TIMEOUT_S = 3600.0


class SSHError(Exception):
    """One line that names the host and what failed."""


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    user: str = "root"
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None  # None with check_host_key=True: ~/.ssh/known_hosts
    check_host_key: bool = True  # only a local lab inventory may switch it off


def open_streamlocal(transport: paramiko.Transport, path: str, timeout: float = 10.0) -> Any:
    """Open a `direct-streamlocal@openssh.com` channel to the remote unix socket `path`.

    paramiko's open_channel() only knows the tcpip/x11 payloads, so this is its channel
    open with the streamlocal payload (OpenSSH PROTOCOL 2.4: string socket path,
    string reserved, uint32 reserved)."""
    t: Any = transport
    if not t.active:
        raise paramiko.SSHException("SSH session not active")
    with t.lock:
        window = t._sanitize_window_size(None)
        packet = t._sanitize_packet_size(None)
        chanid = t._next_channel()
        m = Message()
        m.add_byte(cMSG_CHANNEL_OPEN)
        m.add_string("direct-streamlocal@openssh.com")
        m.add_int(chanid)
        m.add_int(window)
        m.add_int(packet)
        m.add_string(path)
        m.add_string("")
        m.add_int(0)
        chan: Any = paramiko.Channel(chanid)
        t._channels.put(chanid, chan)
        t.channel_events[chanid] = event = threading.Event()
        t.channels_seen[chanid] = True
        chan._set_transport(t)
        chan._set_window(window, packet)
    t._send_user_message(m)
    deadline = time.monotonic() + timeout
    while not event.wait(0.1):
        if not t.active or time.monotonic() > deadline:
            break
    opened = t._channels.get(chanid)
    if opened is None or not event.is_set():
        why = t.get_exception()  # the server's reason; reading it also clears it
        raise paramiko.SSHException(f"remote socket {path}: channel refused ({why or 'timeout'})")
    return opened


class UnixBridge:
    """A local unix socket; each connection to it becomes one tunnelled channel."""

    def __init__(self, session: Session, remote_path: str, local_path: str) -> None:
        self.session, self.remote_path, self.local_path = session, remote_path, local_path
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(local_path)
        self._srv.listen(4)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        t = threading.Thread(target=self._accept, daemon=True, name=f"bridge-{remote_path}")
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        self._srv.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                chan = open_streamlocal(self.session.transport(), self.remote_path)
            except (paramiko.SSHException, SSHError, OSError) as e:
                log.warning("%s: tunnel to %s failed: %s", self.session.name, self.remote_path, e)
                conn.close()
                continue
            self._socks.append(conn)
            t = threading.Thread(target=self._pump, args=(conn, chan), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, conn: socket.socket, chan: Any) -> None:
        try:
            while not self._stop.is_set():
                r, _, _ = select.select([conn, chan], [], [], 0.2)
                if conn in r:
                    data = conn.recv(65536)
                    if not data:
                        break
                    chan.sendall(data)
                if chan in r:
                    data = chan.recv(65536)
                    if not data:
                        break
                    conn.sendall(data)
        except OSError:
            pass
        finally:
            chan.close()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._srv.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(timeout=2)
        with contextlib.suppress(OSError):
            os.unlink(self.local_path)


class Session:
    """One persistent SSH connection to one host (reconnects once on a dead transport)."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._bridges: list[UnixBridge] = []
        self._bridge_dir: str | None = None
        self._bridge_seq = 0
        self._lock = threading.Lock()

    def _fail(self, what: str, e: BaseException) -> SSHError:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return SSHError(
            f"{self.name} ({self.spec.user}@{self.spec.address}:{self.spec.port}): {what}: {reason}"
        )

    def connect(self) -> Session:
        s = self.spec
        c = paramiko.SSHClient()
        if s.check_host_key:
            kh = s.known_hosts or os.path.expanduser("~/.ssh/known_hosts")
            try:
                c.load_host_keys(kh)
            except OSError as e:
                raise self._fail(f"known_hosts {kh}", e) from None
            c.set_missing_host_key_policy(paramiko.RejectPolicy())
        else:
            c.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # local lab only
        try:
            c.connect(
                s.address,
                port=s.port,
                username=s.user,
                key_filename=s.key_file,
                timeout=CONNECT_TIMEOUT_S,
                banner_timeout=CONNECT_TIMEOUT_S,
                auth_timeout=CONNECT_TIMEOUT_S,
                allow_agent=False,
                look_for_keys=s.key_file is None,
            )
        except (paramiko.SSHException, OSError, EOFError) as e:
            c.close()
            raise self._fail("connect", e) from None
        t = c.get_transport()
        assert t is not None
        t.set_keepalive(KEEPALIVE_S)
        self._client, self._sftp = c, None
        log.info("%s: connected to %s", self.name, s.address)
        return self

    def transport(self) -> paramiko.Transport:
        """The live transport; reconnects once if the old one died."""
        with self._lock:
            t = self._client.get_transport() if self._client else None
            if t is None or not t.is_active():
                if self._client is not None:
                    log.info("%s: transport dead, reconnecting", self.name)
                    self._client.close()
                self.connect()
                assert self._client is not None
                t = self._client.get_transport()
            assert t is not None
            return t

    def transport_alive(self) -> bool:
        t = self._client.get_transport() if self._client else None
        return t is not None and t.is_active()

    def run(self, cmd: str, timeout: float = 60.0, check: bool = False) -> tuple[int, str, str]:
        """Run `cmd` through the remote shell; (rc, stdout, stderr). Bounded by `timeout`."""
        timeout = min(timeout, MAX_CMD_TIMEOUT_S)
        for attempt in (0, 1):
            try:
                chan = self.transport().open_session(timeout=CONNECT_TIMEOUT_S)
                break
            except (paramiko.SSHException, EOFError, OSError) as e:
                if attempt:
                    raise self._fail(f"open session for {cmd!r}", e) from None
                self._mark_dead()
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        try:
            chan.settimeout(0.2)
            chan.exec_command(cmd)
            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if (
                    chan.exit_status_ready()
                    and not chan.recv_ready()
                    and not chan.recv_stderr_ready()
                ):
                    break
                if time.monotonic() > deadline:
                    raise self._fail(f"{cmd!r}", TimeoutError(f"timed out after {timeout:g} s"))
                if chan.closed and not chan.exit_status_ready():
                    raise self._fail(f"{cmd!r}", EOFError("connection lost"))
                time.sleep(0.01)
            rc = chan.recv_exit_status()
        except (paramiko.SSHException, OSError) as e:
            raise self._fail(f"{cmd!r}", e) from None
        finally:
            chan.close()
        o, e2 = out.decode(errors="replace"), err.decode(errors="replace")
        if check and rc != 0:
            tail = (e2.strip() or o.strip()).splitlines()[-1:] or ["(no output)"]
            raise self._fail(f"{cmd!r} exited {rc}", RuntimeError(tail[0]))
        return rc, o, e2

    def _mark_dead(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._sftp = None

    def sftp(self) -> paramiko.SFTPClient:
        t = self.transport()
        if (
            self._sftp is None
            or self._sftp.get_channel() is None
            or (
                self._sftp.get_channel().closed  # type: ignore[union-attr]
            )
        ):
            try:
                self._sftp = paramiko.SFTPClient.from_transport(t)
            except (paramiko.SSHException, OSError) as e:
                raise self._fail("sftp", e) from None
            assert self._sftp is not None
        return self._sftp

    def put(self, local: str | Path, remote: str) -> None:
        try:
            self.sftp().put(str(local), remote)
        except (paramiko.SSHException, OSError) as e:
            raise self._fail(f"put {local} -> {remote}", e) from None

    def get(self, remote: str, local: str | Path) -> None:
        try:
            self.sftp().get(remote, str(local))
        except (paramiko.SSHException, OSError) as e:
            raise self._fail(f"get {remote}", e) from None

    def open_unix_socket(self, remote_path: str) -> str:
        """Bridge the remote unix socket to a new local one; returns the local path."""
        if self._bridge_dir is None:
            self._bridge_dir = tempfile.mkdtemp(prefix=f"dqr-{self.name}-")
        self._bridge_seq += 1
        local = os.path.join(self._bridge_dir, f"{self._bridge_seq}.sock")
        self.transport()
        self._bridges.append(UnixBridge(self, remote_path, local))
        return local

    def close_unix_socket(self, local_path: str) -> None:
        """Remove one bridge (and its open channels) made by open_unix_socket()."""
        for b in [b for b in self._bridges if b.local_path == local_path]:
            b.close()
            self._bridges.remove(b)

    def bridges(self) -> list[str]:
        """Local paths of the bridges still open (tests assert none are left)."""
        return [b.local_path for b in self._bridges]

    def close(self) -> None:
        for b in self._bridges:
            b.close()
        self._bridges.clear()
        if self._bridge_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self._bridge_dir)
            self._bridge_dir = None
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Session:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()
