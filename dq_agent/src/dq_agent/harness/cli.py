"""dq-harness: run real migrations over a tc-shaped netns link.

  dq-harness run --scenario skewed --policy auto-converge [--param initial=30] --out DIR
  dq-harness compare --scenario skewed --policies none,auto-converge:initial=60 --out DIR
  dq-harness link --rate-mbit 100          measure the shaped link with iperf3
  dq-harness scenarios | policies          list what exists

Bad flags or scenario fields: one line naming the field, exit 2. Ctrl-C and SIGTERM tear
down every QEMU, namespace and tc rule the run created.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from dq_agent.harness.errors import HarnessError, ScenarioError
from dq_agent.harness.netns import Link, measure_link
from dq_agent.harness.policies import available
from dq_agent.harness.qemu import DEFAULT_QEMU
from dq_agent.harness.run import RunOptions, compare, comparison_table, run_migration
from dq_agent.harness.scenario import builtin_names, load_scenario


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"dq-harness: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        key, eq, val = it.partition("=")
        if not eq or not key:
            raise ScenarioError(f"--param: expected KEY=VALUE, got {it!r}")
        try:
            out[key] = json.loads(val)
        except json.JSONDecodeError:
            out[key] = val
    return out


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dq-harness", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--scenario", required=True, help="built-in name or JSON file")
        sp.add_argument("--link-mbit", type=float, help="override the scenario's link rate")
        sp.add_argument("--timeout", type=float, help="override the scenario's timeout_s")
        sp.add_argument("--qemu", default=DEFAULT_QEMU, help="QEMU binary")
        sp.add_argument("-L", dest="firmware_dir", help="QEMU firmware directory")
        sp.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
        sp.add_argument("--allow-old-qemu", action="store_true",
                        help="run QEMU < 9.0 under TCG (it loses dirty pages)")  # fmt: skip
        sp.add_argument("--out", type=Path, help="directory for result JSON files")

    run = sub.add_parser("run", help="one migration")
    common(run)
    run.add_argument("--policy", default="none")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    cmp_ = sub.add_parser("compare", help="one scenario, several policies, fresh guest each")
    common(cmp_)
    cmp_.add_argument(
        "--policies",
        default="none,auto-converge",
        help="comma-separated NAME[:KEY=VALUE...], e.g. none,auto-converge:initial=60",
    )
    link = sub.add_parser("link", help="create a shaped link and measure it")
    link.add_argument("--rate-mbit", type=float, default=100.0)
    link.add_argument("--seconds", type=float, default=3.0)
    sub.add_parser("scenarios", help="list built-in scenarios")
    sub.add_parser("policies", help="list policy plug-ins")
    return p


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # same cleanup path as Ctrl-C


def _main(args: argparse.Namespace) -> int:
    if args.cmd == "scenarios":
        print("\n".join(builtin_names()))
        return 0
    if args.cmd == "policies":
        print("\n".join(available()))
        return 0
    if args.cmd == "link":
        if not 1 <= args.rate_mbit <= 10000:
            raise ScenarioError("--rate-mbit: must be in [1, 10000]")
        if not 0.5 <= args.seconds <= 60:
            raise ScenarioError("--seconds: must be in [0.5, 60]")
        with Link(args.rate_mbit) as lk:
            got = measure_link(lk, args.seconds)
        print(f"tc rate {args.rate_mbit:g} Mbit/s, measured {got:.1f} Mbit/s")
        return 0
    overrides: dict[str, Any] = {}
    if args.link_mbit is not None:
        overrides["link_mbit"] = args.link_mbit
    if args.timeout is not None:
        overrides["timeout_s"] = args.timeout
    sc = load_scenario(args.scenario, **overrides)
    opts = RunOptions(
        qemu=args.qemu, accel=args.accel, allow_old_qemu=args.allow_old_qemu,
        firmware_dir=args.firmware_dir, out_dir=args.out,
    )  # fmt: skip
    if args.cmd == "run":
        doc = run_migration(sc, args.policy, _params(args.param), opts)
        results = [doc]
    else:
        specs = [n.strip() for n in args.policies.split(",") if n.strip()]
        if not specs:
            raise ScenarioError("--policies: give at least one policy")
        # NAME[:KEY=VALUE[:KEY=VALUE...]], e.g. auto-converge:initial=60:increment=20
        pols = [(sp.split(":")[0], _params(sp.split(":")[1:])) for sp in specs]
        results = compare(sc, pols, opts)
    print(comparison_table(results))
    if args.out:
        print(f"results: {args.out}/", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="dq-harness: %(message)s",
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(args)
    except ScenarioError as e:
        print(f"dq-harness: error: {e}", file=sys.stderr)
        return 2
    except HarnessError as e:
        print(f"dq-harness: failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("dq-harness: interrupted; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
