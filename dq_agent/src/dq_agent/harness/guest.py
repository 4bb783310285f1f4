"""The guest's serial channel: typed, bounded parsing of dq-stress lines, and commands.

Only lines that fully match a known shape become records; numbers are parsed by regex
groups (never eval), so guest output cannot inject fields. Anything else goes to a
bounded raw log for diagnosis.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TypeVar

MAX_LINE = 512
MAX_RAW = 200
MAX_TIMELINE = 200_000
_K = TypeVar("_K")
_V = TypeVar("_V")

MAX_RECORDS = 10_000  # per table (verifies, pfns): the harness asks for a handful

_NUM = r"(\d{1,15}(?:\.\d{1,6})?)"
TP_RE = re.compile(
    rf"DQ TP cpu=(\d{{1,3}}) phase=(\d{{1,2}}) ops={_NUM} mbps={_NUM} gt=(\d{{1,15}})"
)
VERIFY_RE = re.compile(r"DQ VERIFY id=(\d{1,9}) pages=(\d{1,12}) bad=(\d{1,12})")
PFN_RE = re.compile(r"DQ PFN cpu=(\d{1,3}) page=(\d{1,12}) pfn=(\d{1,15})")
READY_RE = re.compile(r"DQ READY cpus=(\d{1,3}) pages=(\d{1,12})")
ERROR_RE = re.compile(r"DQ ERROR field=([a-z_()-]{1,40})")


@dataclass(frozen=True)
class Sample:
    """One throughput report, stamped with the host's monotonic receive time."""

    t_host: float
    side: str
    vcpu: int
    phase: int
    ops_per_s: float
    mb_per_s: float


@dataclass
class GuestState:
    """Everything parsed from the guest so far (both sides feed the same state)."""

    ready: asyncio.Event = field(default_factory=asyncio.Event)
    samples: list[Sample] = field(default_factory=list)
    verifies: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> (pages, bad)
    pfns: dict[tuple[int, int], int] = field(default_factory=dict)
    raw: deque[str] = field(default_factory=lambda: deque(maxlen=MAX_RAW))
    error_field: str | None = None
    verify_seq: int = 0  # ids the harness handed out (independent of what the guest printed)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def feed(self, side: str, line: str, t_host: float) -> None:
        line = line.strip()
        if m := TP_RE.fullmatch(line):
            if len(self.samples) < MAX_TIMELINE:
                self.samples.append(
                    Sample(t_host, side, int(m[1]), int(m[2]), float(m[3]), float(m[4]))
                )
        elif m := VERIFY_RE.fullmatch(line):
            _put_bounded(self.verifies, int(m[1]), (int(m[2]), int(m[3])))
        elif m := PFN_RE.fullmatch(line):
            _put_bounded(self.pfns, (int(m[1]), int(m[2])), int(m[3]))
        elif READY_RE.fullmatch(line):
            self.ready.set()
        elif m := ERROR_RE.fullmatch(line):
            self.error_field = m[1]
            self.ready.set()
        else:
            self.raw.append(f"{side}: {printable(line[:200])}")
        self.changed.set()

    def last_sample_t(self, side: str) -> float:
        return max((s.t_host for s in self.samples if s.side == side), default=0.0)

    def next_verify_id(self) -> int:
        self.verify_seq += 1
        return self.verify_seq


def _put_bounded(table: dict[_K, _V], key: _K, value: _V) -> None:
    """Insert; past MAX_RECORDS the oldest entry goes (a flooding guest cannot grow us)."""
    table.pop(key, None)
    table[key] = value
    while len(table) > MAX_RECORDS:
        del table[next(iter(table))]


def printable(text: str) -> str:
    """Guest text safe for result files and terminals: control characters (escape
    sequences, NUL, backspace) become '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class Console:
    """Reader/writer for one QEMU serial chardev (a unix socket)."""

    def __init__(self, side: str, path: str, state: GuestState) -> None:
        self.side, self.path, self.state = side, path, state
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reader, self._writer = await asyncio.open_unix_connection(
                    self.path, limit=MAX_LINE * 4
                )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buf = b""
        skipping = False  # inside an over-long line: discard up to its newline
        while True:
            chunk = await reader.read(4096)
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            now = time.monotonic()
            for raw in lines:
                # an over-long line is dropped whole: cut short, its head could parse as
                # a valid record (and its tail, after a flood, too)
                if skipping or len(raw) > MAX_LINE:
                    self.state.feed(self.side, "(over-long line dropped)", now)
                else:
                    self.state.feed(self.side, raw.decode("ascii", "replace"), now)
                skipping = False
            if len(buf) > MAX_LINE:  # an unterminated flood: drop it and the rest of it
                buf, skipping = b"", True

    async def send(self, line: str) -> None:
        if self._writer is None:
            raise RuntimeError("console not connected")
        self._writer.write(line.encode() + b"\n")
        await self._writer.drain()

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        if self._writer:
            self._writer.close()


async def wait_for(state: GuestState, pred: object, timeout: float) -> bool:
    """Wait until pred() is true (re-checked whenever the guest says something)."""
    assert callable(pred)
    deadline = time.monotonic() + timeout
    while not pred():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        state.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.changed.wait(), min(left, 0.5))
    return True
