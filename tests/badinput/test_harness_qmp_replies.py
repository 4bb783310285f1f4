"""The harness's QMP client against a fake QEMU monitor on a unix socket that answers
with errors, truncated JSON, or not at all. The run loop must turn each into its own
HarnessError in bounded time (the CLI prints that as one line); anything else is a
traceback at the CLI, and no answer must not mean waiting forever.

Fake on purpose: real QEMU does not misbehave on demand. The greeting and replies follow
the QMP wire format of QEMU 10.0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import QMPClient

from dq_agent.harness.errors import HarnessError
from dq_agent.harness.netns import Link
from dq_agent.harness.policies import make_policy
from dq_agent.harness.qemu import VM
from dq_agent.harness.run import Run, RunOptions
from dq_agent.harness.scenario import load_scenario

GREETING = {"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""},
                    "capabilities": []}}  # fmt: skip
BOUND_S = 10.0  # a healthy QEMU answers query-migrate in milliseconds


async def messages(r: asyncio.StreamReader) -> AsyncIterator[dict[str, Any]]:
    """QMP commands as they arrive (qemu.qmp sends them without a trailing newline)."""
    dec, buf = json.JSONDecoder(), ""
    while chunk := await r.read(4096):
        buf += chunk.decode()
        while buf.strip():
            try:
                msg, end = dec.raw_decode(buf.lstrip())
            except json.JSONDecodeError:
                break
            buf = buf.lstrip()[end:]
            yield msg


async def fake_monitor(path: str, mode: str) -> asyncio.AbstractServer:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(json.dumps(GREETING).encode() + b"\r\n")
        await w.drain()
        async for msg in messages(r):
            cmd = msg.get("execute")
            if cmd == "qmp_capabilities":
                reply: Any = {"return": {}}
            elif mode == "late":
                continue  # never answer
            elif mode == "error":
                reply = {"error": {"class": "GenericError", "desc": "boom"}}
            elif mode == "truncated":
                w.write(b'{"return": {"status": "act')
                await w.drain()
                w.close()
                return
            elif mode == "wrong-shape":
                reply = {"return": ["not", "an", "object"]}
            else:
                raise AssertionError(mode)
            if "id" in msg:
                reply["id"] = msg["id"]
            w.write(json.dumps(reply).encode() + b"\r\n")
            await w.drain()

    return await asyncio.start_unix_server(serve, path)


async def poll_against(tmp: Path, mode: str) -> BaseException | None:
    path = str(tmp / "qmp.sock")
    server = await fake_monitor(path, mode)
    sc = load_scenario("skewed")
    run = Run(sc, make_policy("none"), RunOptions(), Link(sc.link_mbit))  # names only
    vm = VM(name="src", argv_prefix=[], binary="qemu", rundir=tmp, accel="tcg",
            memory_mib=128, vcpus=1, kernel="", initrd="", append="")  # fmt: skip
    vm.qmp = QMPClient("fake")
    await vm.qmp.connect(path)
    run.src = vm
    run.t0 = time.monotonic()
    try:
        await asyncio.wait_for(run._poll(), BOUND_S)
    except BaseException as e:
        return e
    finally:
        server.close()
        # a broken fake connection may not close cleanly
        with contextlib.suppress(Exception):
            await asyncio.wait_for(vm.qmp.disconnect(), 3)
    return None


@pytest.mark.parametrize("mode", ["error", "truncated", "wrong-shape", "late"])
def test_poll_turns_bad_replies_into_harness_error(tmp_path: Path, mode: str) -> None:
    t = time.monotonic()
    err = asyncio.run(poll_against(tmp_path, mode))
    took = time.monotonic() - t
    assert not isinstance(err, TimeoutError), (
        f"{mode}: query-migrate got no answer and the harness was still waiting after "
        f"{BOUND_S:.0f}s (no QMP timeout)"
    )
    assert isinstance(err, HarnessError), f"{mode}: {type(err).__name__}: {err}"
    assert took < BOUND_S
