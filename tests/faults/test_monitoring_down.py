"""Pushgateway down (killed, or hung by SIGSTOP) while runs finish: nothing is lost.

A real harness run produces the result; a real prometheus-pushgateway is killed or
paused; `python -m dq_agent.nightly record` must still keep the result in the local
history, in bounded time, and a later `push` delivers it once the gateway is back.
Prometheus itself is pull-only: nothing on the run path talks to it, so its outage
cannot stop a run (the agent only answers scrapes).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require
from faultrun import record_row, run_with_fault, table_row

from dq_agent.faults import kill_process, paused

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def pushgateway(tmp: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    exe = shutil.which("prometheus-pushgateway")
    require(exe is not None, "prometheus-pushgateway not installed (apt-monitoring)")
    assert exe is not None
    log = (tmp / f"pgw-{port}.log").open("wb")
    p = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise AssertionError("pushgateway did not start") from None
                time.sleep(0.2)
        yield p
    finally:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGCONT)
        p.kill()
        p.wait(timeout=10)
        log.close()


def nightly(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    t = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "dq_agent.nightly", *args], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    return r, time.monotonic() - t


def _history_lines(h: Path) -> int:
    return sum(1 for ln in h.read_text().splitlines() if ln.strip()) if h.exists() else 0


def test_pushgateway_down_results_kept(tmp_path: Path) -> None:
    r = run_with_fault("auto-converge", None)
    result = tmp_path / "run.json"
    result.write_text(json.dumps(r.doc))
    hist = tmp_path / "history.jsonl"
    port = _free_port()
    gw = f"127.0.0.1:{port}"

    with pushgateway(tmp_path, port) as pgw, paused(pgw.pid):
        # Hung gateway: TCP connects, nothing answers. The push times out; the record stays.
        out, hung_s = nightly("record", "--history", str(hist), "--night", "n1", str(result),
                              "--gateway", gw)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "push" in out.stderr and "failed" in out.stderr, out.stderr
    assert _history_lines(hist) == 1
    assert hung_s < 30, f"a hung Pushgateway held the nightly for {hung_s:.1f}s"

    with pushgateway(tmp_path, port) as pgw:
        kill_process(pgw.pid)
        out, down_s = nightly("record", "--history", str(hist), "--night", "n2", str(result),
                              "--gateway", gw)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert _history_lines(hist) == 2

    # Back up: the kept results go out.
    with pushgateway(tmp_path, port):
        out, _ = nightly("push", "--history", str(hist), "--night", "n2", "--gateway", gw)
        assert out.returncode == 0, out.stderr
        with urllib.request.urlopen(f"http://{gw}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    assert "dq_run_last_converged" in body
    row = table_row(r, down_s, f"nightly record: hung gw {hung_s:.1f}s, down gw {down_s:.1f}s")
    row["fault"] = "Pushgateway hung/killed"
    row["outcome"] = "results kept locally; pushed after restart"
    record_row(row)
