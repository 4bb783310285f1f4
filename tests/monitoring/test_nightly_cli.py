"""dq-nightly CLI on doctored histories: exit codes, named metric, report with images."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import require
from monitoring_synth import history, result

from dq_agent.nightly.history import append, load

TONIGHT = "2026-11-09T02:00Z"


def _nightly(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dq_agent.nightly", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tonight(tmp: Path, dq_total_time: float) -> list[Path]:
    files = []
    for pol, tt, dt, ret in (
        ("auto-converge", 40.0, 400.0, (0.5, 0.4)),
        ("dirty-quota", dq_total_time, 250.0, (0.95, 0.65)),
    ):
        for rep in range(2):
            p = tmp / "results" / f"{pol}-{rep}.json"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(
                json.dumps(
                    result(
                        pol,
                        total_time_s=tt * (1 + 0.02 * rep),
                        downtime_ms=dt,
                        retained=ret,
                        run_id=f"{pol}-{rep}",
                    )
                )
            )
            files.append(p)
    sim = tmp / "results" / "sim-dq.json"
    sim.write_text(
        json.dumps(result("dirty-quota", total_time_s=22.0, kind="simulated", run_id="sim-dq"))
    )
    return [*files, sim]


def _setup(tmp: Path, dq_total_time: float) -> Path:
    hist = tmp / "history.jsonl"
    append(hist, history(8, noise=0.08, seed=11))
    rc = _nightly(
        "record",
        "--history",
        str(hist),
        "--night",
        TONIGHT,
        *map(str, _tonight(tmp, dq_total_time)),
    )
    assert rc.returncode == 0, rc.stderr
    return hist


def test_healthy_night_passes_and_writes_report(tmp_path: Path) -> None:
    hist = _setup(tmp_path, 25.0)
    rc = _nightly("verdict", "--history", str(hist), "--report-dir", str(tmp_path / "report"))
    assert rc.returncode == 0, rc.stderr
    page = tmp_path / "report" / "index.html"
    html = page.read_text()
    assert "no regression" in html and "predicted (dq-sim)" in html
    imgs = sorted((tmp_path / "report" / "img").glob("*.png"))
    assert [p.name for p in imgs] == ["s0-policies.png", "s0-timeseries.png", "s0-trends.png"]
    for p in imgs:
        assert p.stat().st_size > 5000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="img/{p.name}"' in html
    # raw results are linked and the links resolve
    assert 'href="../results/dirty-quota-0.json"' in html
    assert (page.parent / "../results/dirty-quota-0.json").resolve().exists()
    recs = [r for r in load(hist) if r.night == TONIGHT]
    assert len(recs) == 5 and all(r.environment["host_facts"]["cpus"] >= 1 for r in recs)
    assert all(r.environment["git_commit"] for r in recs)


def test_doctored_regression_fails_and_names_the_metric(tmp_path: Path) -> None:
    hist = _setup(tmp_path, 45.0)  # dirty-quota took 45 s against a ~25 s baseline
    rc = _nightly("verdict", "--history", str(hist), "--report-dir", str(tmp_path / "r"))
    assert rc.returncode == 1
    assert "REGRESSION: skewed/100mbit/dirty-quota total_time_s" in rc.stderr
    assert "REGRESSION in 1 metric(s)" in (tmp_path / "r" / "index.html").read_text()


def test_bad_result_is_one_line_exit_2_and_no_partial_history(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(result("none")))
    bad = result("none")
    del bad["link"]["rate_bps"]
    badf = tmp_path / "bad.json"
    badf.write_text(json.dumps(bad))
    hist = tmp_path / "h.jsonl"
    rc = _nightly("record", "--history", str(hist), str(good), str(badf))
    assert rc.returncode == 2
    assert rc.stderr.strip().count("\n") == 0 and "link.rate_bps" in rc.stderr
    assert "Traceback" not in rc.stderr and not hist.exists()


def test_schema_violation_names_the_field(tmp_path: Path) -> None:
    bad = result("none")
    bad["summary"]["vcpus"][0]["runtime_pct"] = 140
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad))
    rc = _nightly("record", "--history", str(tmp_path / "h.jsonl"), str(f))
    assert rc.returncode == 2 and "summary.vcpus[0].runtime_pct" in rc.stderr, rc.stderr


def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    require(shutil.which("chromium") is not None, "chromium missing (apt-monitoring.txt)")
    hist = _setup(tmp_path, 25.0)
    assert (
        _nightly("verdict", "--history", str(hist), "--report-dir", str(tmp_path / "r")).returncode
        == 0
    )
    png = tmp_path / "page.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--window-size=1280,2300",
                f"--screenshot={png}",
                (tmp_path / "r" / "index.html").as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000


def test_unavailable_policy_is_listed_not_judged(tmp_path: Path) -> None:
    hist = _setup(tmp_path, 25.0)
    doc = result("dirty-limit", run_id="dl-0")
    doc["summary"].update(
        converged=False,
        total_time_s=0.0,
        downtime_ms=None,
        bytes_sent=0,
        iterations=0,
        alive_on=None,
        unavailable="needs KVM with dirty-ring-size",
        vcpus=[{"vcpu": 0, "throughput_retained": None, "runtime_pct": None}],
    )
    f = tmp_path / "dl.json"
    f.write_text(json.dumps(doc))
    assert _nightly("record", "--history", str(hist), "--night", TONIGHT, str(f)).returncode == 0
    rec = [r for r in load(hist) if r.policy == "dirty-limit"]
    assert [(r.kind, r.metrics, r.note) for r in rec] == [
        ("unavailable", {}, "needs KVM with dirty-ring-size")
    ]
    rc = _nightly("verdict", "--history", str(hist), "--report-dir", str(tmp_path / "r"))
    assert rc.returncode == 0 and "dirty-limit" not in rc.stderr
    html = (tmp_path / "r" / "index.html").read_text()
    assert "<b>dirty-limit</b>: needs KVM with dirty-ring-size" in html
