"""Guest output is untrusted: parsing is bounded, typed, and never evaluates anything.

Drives the harness's real parser (GuestState.feed) and its real socket reader
(Console over a unix socket) with hostile guest output.
"""

from __future__ import annotations

import asyncio
import builtins
import tempfile
from pathlib import Path
from typing import Any

import pytest

from dq_agent.harness.guest import MAX_LINE, MAX_RAW, Console, GuestState

GOOD_TP = "DQ TP cpu=0 phase=0 ops=1234.5 mbps=12.250 gt=1000"


def fed(*lines: str) -> GuestState:
    st = GuestState()
    for ln in lines:
        st.feed("src", ln, 1.0)
    return st


def test_good_line_is_typed() -> None:
    st = fed(GOOD_TP)
    (s,) = st.samples
    assert (s.vcpu, s.phase, s.ops_per_s, s.mb_per_s) == (0, 0, 1234.5, 12.25)
    assert isinstance(s.vcpu, int) and isinstance(s.ops_per_s, float)


@pytest.mark.parametrize(
    "line",
    [
        "DQ TP cpu=0 phase=0 ops=1e308 mbps=1 gt=1",  # exponent: not a plain number
        "DQ TP cpu=0 phase=0 ops=nan mbps=1 gt=1",
        "DQ TP cpu=0 phase=0 ops=inf mbps=1 gt=1",
        "DQ TP cpu=-1 phase=0 ops=1 mbps=1 gt=1",
        "DQ TP cpu=0 phase=0 ops=__import__('os').system('id') mbps=1 gt=1",
        "DQ TP cpu=0 phase=0 ops=1 mbps=1 gt=1 extra=1",  # trailing field
        "DQ TP cpu=0 phase=0 ops=1 mbps=1 gt=1\x1b[2J",
        "xx" + GOOD_TP,  # record not at the start
        GOOD_TP + " " + GOOD_TP,  # two records in one line
        "DQ TP cpu=0 phase=0 ops=" + "9" * 400 + " mbps=1 gt=1",
        'dq_migration_budget_pages{domain="x"} 1',  # a Prometheus line: just text
        '{"summary": {"converged": true}}',  # a result fragment: just text
        "DQ VERIFY id=1 pages=10 bad=-1",
        "DQ VERIFY id=1 pages=1e3 bad=0",
    ],
)
def test_malformed_lines_are_not_records(line: str) -> None:
    st = fed(line)
    assert st.samples == [] and st.verifies == {} and st.pfns == {}
    assert not st.ready.is_set() and st.error_field is None
    assert len(st.raw) == 1 and len(st.raw[0]) <= 210


def test_nothing_is_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feeding hostile text never reaches eval/exec/compile."""
    called: list[str] = []

    def trap(name: str) -> Any:
        def f(*a: Any, **k: Any) -> Any:
            called.append(name)
            raise AssertionError(f"{name} called while parsing guest output")

        return f

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, trap(name))
    fed(
        "DQ TP cpu=0 phase=0 ops=__import__('os') mbps=1 gt=1",
        "DQ ERROR field=eval(1)",
        "DQ READY cpus=1 pages=1",
        GOOD_TP,
    )
    assert called == []


def test_raw_log_is_bounded() -> None:
    st = GuestState()
    for i in range(MAX_RAW * 5):
        st.feed("src", f"noise {i} " + "x" * 5000, 1.0)
    assert len(st.raw) == MAX_RAW
    assert max(len(r) for r in st.raw) <= 210


def test_raw_log_has_no_control_characters() -> None:
    """The raw tail goes into result files and terminals: no escape sequences from a guest."""
    st = fed("boom \x1b]0;pwned\x07 \x1b[31mred\x1b[0m \x00\x08")
    assert all(ch.isprintable() for ch in st.raw[0]), repr(st.raw[0])


def test_record_tables_are_bounded() -> None:
    """A guest printing endless distinct VERIFY/PFN ids must not grow host memory forever."""
    st = GuestState()
    for i in range(300_000):
        st.feed("src", f"DQ VERIFY id={i} pages=1 bad=0", 1.0)
        st.feed("src", f"DQ PFN cpu=0 page={i} pfn={i}", 1.0)
    assert len(st.verifies) <= 100_000 and len(st.pfns) <= 100_000, (
        len(st.verifies),
        len(st.pfns),
    )


def test_console_reader_bounds_floods() -> None:
    """Through the real socket reader: a 4 MiB line without newline, then good lines."""

    async def scenario(path: str) -> GuestState:
        st = GuestState()
        done = asyncio.Event()

        async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"A" * (4 << 20))  # unterminated flood
            w.write(b"\n" + GOOD_TP.encode() + b"\n")
            w.write(b"\xff\xfe garbage bytes \x00\n")
            w.write(
                ("DQ TP cpu=1 phase=0 ops=5 mbps=1 gt=2" + " " * (2 * MAX_LINE) + "z\n").encode()
            )
            w.write(b"DQ READY cpus=2 pages=10\n")
            await w.drain()
            await done.wait()
            w.close()

        server = await asyncio.start_unix_server(serve, path)
        con = Console("src", path, st)
        await con.connect(timeout=5)
        try:
            await asyncio.wait_for(st.ready.wait(), 20)
        finally:
            done.set()
            await con.close()
            server.close()
        return st

    with tempfile.TemporaryDirectory() as d:
        path = str(Path(d) / "serial.sock")
        st = asyncio.run(scenario(path))
    assert [s.vcpu for s in st.samples] == [0]
    assert all(len(r) <= 210 for r in st.raw)
