"""python -m dq_agent.runner: run scenarios between lab hosts over persistent SSH.

  python -m dq_agent.runner run --inventory inventory/local/hosts.yml --scenario skewed \
      --policies none,auto-converge:initial=60 --bandwidth 100mbit --out DIR [--via libvirt]

The source is the first host of `dq_sources`, the destination the first of
`dq_destinations`. Bad flags, inventory or scenario fields: one line naming the field,
exit 2. Ctrl-C/SIGTERM stop both QEMUs and remove the tc rule.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from dq_agent.harness.cli import _params
from dq_agent.harness.errors import HarnessError, ScenarioError
from dq_agent.harness.qemu import DEFAULT_QEMU
from dq_agent.harness.run import RunOptions, comparison_table
from dq_agent.harness.scenario import load_scenario
from dq_agent.runner.enforcement import ENFORCERS
from dq_agent.runner.inventory import load_inventory
from dq_agent.runner.lab import VIAS, LabRunner, check_policies
from dq_agent.runner.ssh import SSHError

PROG = "dq-runner"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="one scenario, each policy on a fresh guest pair")
    r.add_argument("--inventory", required=True, type=Path)
    r.add_argument("--scenario", required=True, help="built-in name or JSON file")
    r.add_argument("--policies", default="none", help="NAME[:KEY=VALUE...],...")
    r.add_argument("--bandwidth", help="migration link rate, e.g. 100mbit or 1gbit")
    r.add_argument("--timeout", type=float, help="override the scenario's timeout_s")
    r.add_argument(
        "--via",
        choices=list(VIAS),
        default="qemu",
        help="qemu: the runner starts QEMU itself; libvirt: the guest is a libvirt domain "
        "migrated by libvirt (the daemon's socket tunnelled over the SSH session)",
    )
    r.add_argument(
        "--dirty-quota-by",
        choices=list(ENFORCERS),
        default="auto",
        help="--via libvirt: who enforces dirty-quota (auto: the host's dq-agent if one "
        "runs, else the runner)",
    )
    r.add_argument(
        "--qemu",
        default=DEFAULT_QEMU,
        help="QEMU binary on the lab hosts (auto: /opt/dq-qemu's patched one if present)",
    )
    r.add_argument("-L", dest="firmware_dir", help="QEMU firmware directory on the hosts")
    r.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    r.add_argument("--appliance", type=Path, help="local appliance dir (default: built one)")
    r.add_argument("--remote-appliance", help="appliance dir on the hosts (copied if missing)")
    r.add_argument("--out", type=Path, help="directory for result JSON files")
    r.add_argument(
        "--result",
        type=Path,
        help="one policy only: write its result JSON to exactly this file (a nightly "
        "matrix cell); exit 3 without a file when the policy is unavailable there",
    )
    return p


def bandwidth_mbit(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(k|m|g)bit", text.strip().lower())
    if not m:
        raise ScenarioError(f"--bandwidth: expected e.g. 100mbit or 1gbit, got {text!r}")
    rate = float(m[1]) * {"k": 1e-3, "m": 1.0, "g": 1e3}[m[2]]
    if not 1 <= rate <= 100_000:
        raise ScenarioError(f"--bandwidth: must be 1mbit..100gbit, got {text!r}")
    return rate


def _main(args: argparse.Namespace) -> int:
    overrides: dict[str, float] = {}
    if args.bandwidth:
        overrides["link_mbit"] = bandwidth_mbit(args.bandwidth)
    if args.timeout is not None:
        overrides["timeout_s"] = args.timeout
    sc = load_scenario(args.scenario, **overrides)
    specs = [n.strip() for n in args.policies.split(",") if n.strip()]
    if not specs:
        raise ScenarioError("--policies: give at least one policy")
    pols = [(sp.split(":")[0], _params(sp.split(":")[1:])) for sp in specs]
    if args.result and len(pols) != 1:
        raise ScenarioError("--result: exactly one policy per result file")
    if args.dirty_quota_by != "auto" and args.via != "libvirt":
        raise ScenarioError("--dirty-quota-by: only with --via libvirt")
    check_policies(pols, args.via)  # before any host is touched
    src, dst = load_inventory(args.inventory)
    opts = RunOptions(
        qemu=args.qemu, accel=args.accel, firmware_dir=args.firmware_dir,
        appliance=args.appliance, out_dir=args.out,
    )  # fmt: skip
    runner = LabRunner(src, dst, args.remote_appliance, args.via, args.dirty_quota_by)
    with runner:
        results = runner.compare(sc, pols, opts)
    print(comparison_table(results))
    if args.out:
        print(f"results: {args.out}/", file=sys.stderr)
    if args.result:
        return write_result(results[0], args.result)
    return 0


def write_result(doc: dict[str, Any], path: Path) -> int:
    """The matrix cell's file, whole or not at all (harness_cell's exit codes)."""
    if "unavailable" in doc["summary"]:
        print(f"{PROG}: policy unavailable here: {doc['summary']['unavailable']}", file=sys.stderr)
        return 3
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(path)
    return 0


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format=f"{PROG}: %(message)s"
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(args)
    except ScenarioError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (HarnessError, SSHError) as e:
        print(f"{PROG}: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; cleaned up", file=sys.stderr)
        return 130
