"""dq_agent.runner.ssh against real sshd instances in their own network namespaces."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import pytest
from qemu.qmp import QMPClient

from dq_agent.runner.ssh import Session, SSHError
from runner.lab_hosts import LabHosts

HOST_QEMU = "/usr/bin/qemu-system-x86_64"


def test_commands_exit_codes_and_output(lab: LabHosts) -> None:
    with Session(lab.spec("src")) as s:
        rc, out, err = s.run("echo hello; echo oops >&2; exit 3")
        assert (rc, out, err) == (3, "hello\n", "oops\n")
        # the command runs on the "host": inside the src namespace, on its address
        rc, out, _ = s.run("ip -o -4 addr show dev eth0")
        assert rc == 0 and lab.hosts["src"].ip in out
        with pytest.raises(SSHError, match=r"dq-src .*exited 1"):
            s.run("false", check=True)


def test_command_timeout_is_bounded_and_names_the_host(lab: LabHosts) -> None:
    with Session(lab.spec("dst")) as s:
        t = time.monotonic()
        with pytest.raises(SSHError, match=r"^dq-dst \(root@198\.18\.\S+\): 'sleep 30': timed out"):
            s.run("sleep 30", timeout=1)
        assert time.monotonic() - t < 5
        assert s.run("true")[0] == 0  # the session survives a timed-out command


def test_sftp_round_trip(lab: LabHosts, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "a").write_bytes(data)
    remote = f"/tmp/dqr-sftp-{os.getpid()}"
    with Session(lab.spec("src")) as s:
        s.put(tmp_path / "a", remote)
        rc, _, _ = s.run(f"sha256sum {remote} && rm -f {remote}.b && cp {remote} {remote}.b")
        assert rc == 0
        s.get(f"{remote}.b", tmp_path / "b")
        s.run(f"rm -f {remote} {remote}.b")
    assert (tmp_path / "b").read_bytes() == data


def test_reconnects_after_the_server_drops_the_connection(lab: LabHosts) -> None:
    with Session(lab.spec("src")) as s:
        assert s.run("echo one")[1] == "one\n"
        lab.kill_sessions("src")
        deadline = time.monotonic() + 5
        while s.transport_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not s.transport_alive()
        assert s.run("echo two")[1] == "two\n"  # reconnected once, transparently


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"address": "UNUSED"}, "connect"),  # on our bridge's /29, nobody there
        ({"key_file": "WRONGKEY"}, "connect"),
        ({"known_hosts": "EMPTY"}, "connect"),  # host key unknown: rejected, not added
    ],
    ids=["bad-host", "bad-key", "unknown-host-key"],
)
def test_bad_host_or_key_gives_one_clear_line(
    lab: LabHosts, tmp_path: Path, over: dict[str, str], needle: str
) -> None:
    if over.get("key_file") == "WRONGKEY":
        import subprocess

        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
        )
        over = {"key_file": str(tmp_path / "k")}
    if over.get("address") == "UNUSED":
        over = {"address": lab.unused_ip}
    if over.get("known_hosts") == "EMPTY":
        (tmp_path / "kh").write_text("")
        over = {"known_hosts": str(tmp_path / "kh")}
    t = time.monotonic()
    with pytest.raises(SSHError) as ei:
        Session(lab.spec("src", **over)).connect()
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("dq-src (root@") and f": {needle}: " in msg
    assert time.monotonic() - t < 15
    print(msg)


def test_qmp_tunnel_reaches_a_real_qemu(lab: LabHosts) -> None:
    rundir = f"/tmp/dqr-qmp-{os.getpid()}"
    with Session(lab.spec("src")) as s:
        s.run(f"mkdir -p {rundir}", check=True)
        try:
            s.run(
                f"{HOST_QEMU} -machine none -accel tcg -nodefaults -display none -daemonize "
                f"-pidfile {rundir}/q.pid -qmp unix:{rundir}/qmp.sock,server=on,wait=off",
                timeout=30,
                check=True,
            )
            # QEMU runs inside the "host" namespace, started over the session
            rc, _, _ = s.run(
                f"ip netns identify $(cat {rundir}/q.pid) | grep -qx {lab.hosts['src'].ns}"
            )
            assert rc == 0
            local = s.open_unix_socket(f"{rundir}/qmp.sock")

            async def status() -> str:
                q = QMPClient("t")
                await q.connect(local)
                try:
                    r = await q.execute("query-status")
                    return str(r["status"])  # type: ignore[index]
                finally:
                    await q.disconnect()

            assert asyncio.run(status()) in ("running", "prelaunch")
            assert asyncio.run(status()) in ("running", "prelaunch")  # a second connection
            # a missing remote socket: the local connection just ends; the session lives on
            c = socket.socket(socket.AF_UNIX)
            c.settimeout(15)
            c.connect(s.open_unix_socket(f"{rundir}/nothing.sock"))
            assert c.recv(10) == b""
            c.close()
            assert asyncio.run(status()) in ("running", "prelaunch")
        finally:
            s.run(f"kill $(cat {rundir}/q.pid) 2>/dev/null; sleep 0.3; rm -rf {rundir}")
