"""A real monitoring stack on 127.0.0.1 for tests: Debian's Prometheus, Pushgateway and
node_exporter binaries, configured from the Ansible roles' own templates."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
BINARIES = ("prometheus", "prometheus-pushgateway", "prometheus-node-exporter", "promtool")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_role_template(role: str, template: str, **overrides: Any) -> str:
    """Render a role template the way Ansible would (trim_blocks), defaults + overrides."""
    env = jinja2.Environment(
        undefined=jinja2.ChainableUndefined, trim_blocks=True, keep_trailing_newline=True
    )
    tpl = env.from_string((ROLES / role / "templates" / template).read_text())
    variables = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    variables["ansible_managed"] = "rendered by tests/monitoring"
    variables.update(overrides)
    return tpl.render(**variables)


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer within {timeout}s")
        time.sleep(0.2)


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a daemon, always stop it (terminate, then kill) even when the test fails."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class Stack:
    prometheus: str  # http://127.0.0.1:port
    pushgateway: str  # 127.0.0.1:port (push_to_gateway form)
    textfile_dir: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise AssertionError(f"query failed: {expr}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            res = self.query(expr)
            if res or time.monotonic() > deadline:
                return res
            time.sleep(0.5)


@contextlib.contextmanager
def stack(tmp: Path, agent_port: int) -> Iterator[Stack]:
    """Prometheus scraping an agent on agent_port, node_exporter, and a Pushgateway."""
    prom_port, push_port, node_port = free_port(), free_port(), free_port()
    textfile_dir = tmp / "textfile"
    rules_dir = tmp / "rules"
    textfile_dir.mkdir(parents=True)
    rules_dir.mkdir(parents=True)
    inventory = {
        "groups": {"dq_sources": ["local"], "dq_destinations": [], "dq_monitors": []},
        "hostvars": {"local": {"dq_mgmt_address": "127.0.0.1"}},
    }
    config = render_role_template(
        "prometheus",
        "etc/prometheus/prometheus.yml.j2",
        **inventory,
        prometheus_agent_port=agent_port,
        prometheus_node_exporter_port=node_port,
        prometheus_pushgateway_address=f"127.0.0.1:{push_port}",
        prometheus_listen_address=f"127.0.0.1:{prom_port}",
        prometheus_scrape_interval="1s",
        prometheus_evaluation_interval="1s",
        prometheus_rules_dir=str(rules_dir),
    )
    (tmp / "prometheus.yml").write_text(config)
    (rules_dir / "dqlab.rules.yml").write_text(
        render_role_template("prometheus", "etc/prometheus/rules/dqlab.rules.yml.j2")
    )
    for check in (
        ["check", "config", str(tmp / "prometheus.yml")],
        ["check", "rules", str(rules_dir / "dqlab.rules.yml")],
    ):
        out = subprocess.run(["promtool", *check], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    with contextlib.ExitStack() as es:
        es.enter_context(
            process(
                [
                    "prometheus-pushgateway",
                    f"--web.listen-address=127.0.0.1:{push_port}",
                    # Debian's binary persists to /var/lib/prometheus by default: stay apart
                    f"--persistence.file={tmp / 'pushgateway.data'}",
                ],
                tmp / "pushgateway.log",
            )
        )
        es.enter_context(
            process(
                [
                    "prometheus-node-exporter",
                    f"--web.listen-address=127.0.0.1:{node_port}",
                    "--collector.disable-defaults",
                    "--collector.cpu",
                    "--collector.netdev",
                    "--collector.textfile",
                    f"--collector.textfile.directory={textfile_dir}",
                ],
                tmp / "node_exporter.log",
            )
        )
        es.enter_context(
            process(
                [
                    "prometheus",
                    f"--config.file={tmp / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                tmp / "prometheus.log",
            )
        )
        wait_http(f"http://127.0.0.1:{push_port}/-/ready")
        wait_http(f"http://127.0.0.1:{node_port}/metrics")
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", timeout=60)
        yield Stack(f"http://127.0.0.1:{prom_port}", f"127.0.0.1:{push_port}", textfile_dir)
