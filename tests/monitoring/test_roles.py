"""The monitoring roles under real ansible-playbook on localhost (no services started)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import require

REPO = Path(__file__).resolve().parents[2]


def _play(tmp: Path, role: str, extra: dict[str, object]) -> subprocess.CompletedProcess[str]:
    (tmp / "play.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": f"test {role}",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "roles": [{"role": str(REPO / "roles" / role)}],
                }
            ]
        )
    )
    (tmp / "vars.json").write_text(json.dumps(extra))
    env = dict(
        os.environ,
        ANSIBLE_LOCAL_TEMP=str(tmp / "atmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            "localhost,",
            "-c",
            "local",
            str(tmp / "play.yml"),
            "-e",
            f"@{tmp / 'vars.json'}",
            "-e",
            "ansible_python_interpreter=python3",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_grafana_local_lab_renders_provisioning_only_and_says_so(tmp_path: Path) -> None:
    require(shutil.which("ansible-playbook") is not None, "ansible-playbook not on PATH")
    conf, dash = tmp_path / "grafana", tmp_path / "dashboards"
    extra = {
        "grafana_install": False,
        "grafana_config_root": str(conf),
        "grafana_dashboards_dir": str(dash),
    }
    out = _play(tmp_path, "grafana", extra)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    # the repo's ansible.cfg prints results as YAML, which folds long lines
    assert "the Grafana server is not installed on this host" in " ".join(out.stdout.split())
    ds = yaml.safe_load((conf / "provisioning/datasources/dqlab.yml").read_text())
    prov = yaml.safe_load((conf / "provisioning/dashboards/dqlab.yml").read_text())
    assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus"
    assert prov["apiVersion"] == 1 and prov["providers"][0]["options"]["path"] == str(dash)
    committed = sorted(p.name for p in (REPO / "dashboards").glob("*.json"))
    assert sorted(p.name for p in dash.glob("*.json")) == committed
    for name in committed:
        assert (dash / name).read_text() == (REPO / "dashboards" / name).read_text()
    assert not (conf / "dqlab-admin.env").exists()  # no secret file without a server
    again = _play(tmp_path, "grafana", extra)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-2000:]


def test_grafana_real_install_refuses_without_repo_key_and_password(tmp_path: Path) -> None:
    require(shutil.which("ansible-playbook") is not None, "ansible-playbook not on PATH")
    out = _play(
        tmp_path, "grafana", {"grafana_install": True, "grafana_config_root": str(tmp_path / "g")}
    )
    assert out.returncode != 0
    assert "set grafana_apt_repo_url, grafana_apt_key_url and" in " ".join(out.stdout.split())
    assert not (tmp_path / "g").exists()  # stopped at preflight: nothing written


def test_scrape_config_from_the_example_inventory_through_ansible(tmp_path: Path) -> None:
    """Ansible's own templating + the committed lab inventory -> a config promtool accepts."""
    require(
        shutil.which("ansible") is not None and shutil.which("promtool") is not None,
        "ansible/promtool missing",
    )
    out_file = tmp_path / "prometheus.yml"
    env = dict(
        os.environ,
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "atmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
    )
    (tmp_path / "play.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "render",
                    "hosts": "mon-1",
                    "gather_facts": False,
                    "connection": "local",
                    "vars_files": [str(REPO / "roles/prometheus/defaults/main.yml")],
                    "tasks": [
                        {
                            "name": "Render",
                            "ansible.builtin.copy": {
                                "content": "{{ lookup('ansible.builtin.template', '"
                                + str(
                                    REPO
                                    / "roles/prometheus/templates/etc/prometheus/prometheus.yml.j2"
                                )
                                + "') }}",
                                "dest": str(out_file),
                                "mode": "0644",
                            },
                        }
                    ],
                }
            ]
        )
    )
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            str(REPO / "inventory/lab.example"),
            str(tmp_path / "play.yml"),
            "-e",
            "ansible_python_interpreter=" + sys.executable,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    cfg = yaml.safe_load(out_file.read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    agent = [(t["targets"][0], t["labels"]["host"]) for t in jobs["dq_agent"]["static_configs"]]
    node = [(t["targets"][0], t["labels"]["host"]) for t in jobs["node"]["static_configs"]]
    assert agent == [("192.0.2.11:9177", "kvm-src-1"), ("192.0.2.21:9177", "kvm-dst-1")]
    assert ("192.0.2.41:9100", "mon-1") in node and len(node) == 3
    assert jobs["pushgateway"]["honor_labels"] is True
    cfg["rule_files"] = []  # the rules live on the monitor host; checked in the live test
    out_file.write_text(yaml.safe_dump(cfg))
    check = subprocess.run(
        ["promtool", "check", "config", str(out_file)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
