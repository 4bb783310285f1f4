"""dq-agent config and flags: every bad value is refused with one line naming the field."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from badinput_cli import assert_refused, run_module, snapshot

AGENT = "dq_agent.agent.cli"

# (config text, the field the error line must name)
BAD_CONFIGS = [
    ("[metrics]\nport = 70000\n", "metrics.port"),
    ("[metrics]\nport = 0\n", "metrics.port"),
    ('[metrics]\nport = "9177"\n', "metrics.port"),
    ("[metrics]\nport = true\n", "metrics.port"),
    ('[metrics]\nlisten_address = "example.org"\n', "metrics.listen_address"),
    ('[metrics]\nlisten_address = "198.18.48.1/24"\n', "metrics.listen_address"),
    ('[metrics]\nhost_label = "a b"\n', "metrics.host_label"),
    ('[metrics]\nhost_label = "x\\u0000y"\n', "metrics.host_label"),
    ("[metrics]\nlisten = 1\n", "metrics.listen"),
    ('[libvirt]\nuri = "not a uri"\n', "libvirt.uri"),
    ("[libvirt]\nuri = 5\n", "libvirt.uri"),
    ('[control]\nbackend = "fast"\n', "control.backend"),
    ("[control]\ntick_ms = 10\n", "control.tick_ms"),
    ('[control]\ntick_ms = "x"\n', "control.tick_ms"),
    ("[control]\ninterval_ms = 0\n", "control.interval_ms"),
    ("[control]\ninterval_ms = 1.5\n", "control.interval_ms"),
    ("[control]\ndeadline_ms = 99\n", "control.deadline_ms"),
    ("[control]\ndeadline_ms = 300\ntick_ms = 200\n", "control.deadline_ms"),
    ("[control]\nwindow = 0\n", "control.window"),
    ("[control]\nconvergence_factor = 0\n", "control.convergence_factor"),
    ("[control]\nconvergence_factor = 1.5\n", "control.convergence_factor"),
    ("[control]\nconvergence_factor = nan\n", "control.convergence_factor"),
    ("[control]\nconvergence_factor = inf\n", "control.convergence_factor"),
    ("[control]\npool_cap_budgets = -1\n", "control.pool_cap_budgets"),
    ('[control]\nstart_immediately = "yes"\n', "control.start_immediately"),
    ("[control]\ntick_ms = 99999999999999999\n", "control.tick_ms"),
    ('[log]\nlevel = "trace"\n', "log.level"),
    ('control = "x"\n', "control"),
    ("[domains]\nweb = 3\n", "domains.web"),
    ('[domains."bad name"]\n', "domains.bad name"),
    ("[domains.web]\nweight = 0\n", "domains.web.weight"),
    ("[domains.web]\nweight = 1001\n", "domains.web.weight"),
    ("[domains.web]\nvcpu_weights = [1, 0]\n", "domains.web.vcpu_weights[1]"),
    ('[domains.web]\nvcpu_weights = "1,2"\n', "domains.web.vcpu_weights"),
    ('[domains.web]\nlink = ""\n', "domains.web.link"),
    ('[domains.web]\nlink = "../etc"\n', "domains.web.link"),
    ('[domains.web]\nenabled = "no"\n', "domains.web.enabled"),
    ("[domains.web]\nwieght = 2\n", "domains.web.wieght"),
    ("surprise = 1\n", "surprise"),
    ("port = \n", "file"),
    ("[metrics\n", "file"),
]


def _write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / "agent.toml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "field"), BAD_CONFIGS, ids=[f for _, f in BAD_CONFIGS])
def test_check_config_refuses(tmp_path: Path, text: str, field: str) -> None:
    cfg = _write(tmp_path, text)
    before = snapshot(tmp_path)
    line = assert_refused(run_module(AGENT, "check-config", str(cfg)), field)
    assert line.startswith("dq-agent: config error:")
    assert snapshot(tmp_path) == before


def test_not_utf8(tmp_path: Path) -> None:
    cfg = _write(tmp_path, b"\xff\xfe[metrics]\n")
    assert_refused(run_module(AGENT, "check-config", str(cfg)), "not UTF-8")


def test_missing_and_directory(tmp_path: Path) -> None:
    assert_refused(run_module(AGENT, "check-config", str(tmp_path / "nope.toml")), "nope.toml")
    assert_refused(run_module(AGENT, "check-config", str(tmp_path)), "file")


def test_good_config_passes(tmp_path: Path) -> None:
    """The negative tests mean something only if a valid file is accepted."""
    cfg = _write(
        tmp_path,
        '[metrics]\nlisten_address = "198.18.48.1"\nport = 9177\n'
        '[control]\nbackend = "dirty-quota"\ntick_ms = 200\n'
        "[domains.web]\nweight = 2\nvcpu_weights = [1, 3]\n",
    )
    out = run_module(AGENT, "check-config", str(cfg))
    assert out.rc == 0, out.stderr
    assert "ok" in out.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["bogus"], "cmd"),
        ([], "cmd"),
        (["run", "--bogus"], "--bogus"),
        (["check-config"], "file"),
        (["run", "--config"], "--config"),
    ],
)
def test_bad_flags(args: list[str], field: str) -> None:
    assert_refused(run_module(AGENT, *args), field)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_with_bad_config_starts_nothing(tmp_path: Path) -> None:
    """`run` refuses before binding the metrics port or touching libvirt."""
    port = _free_port()
    cfg = _write(tmp_path, f'[metrics]\nport = {port}\n[control]\nbackend = "turbo"\n')
    assert_refused(run_module(AGENT, "run", "--config", str(cfg)), "control.backend")
    with socket.socket() as s:  # the port is still free: nothing was left listening
        s.bind(("127.0.0.1", port))
