"""`dq-sim`: run the pre-copy simulator on scenarios and compare policies.

  dq-sim list
  dq-sim run SCENARIO [--policy P]... [--param POLICY.KEY=VALUE]... [--json OUT]
  dq-sim compare [SCENARIO...] [--policy P]... [--param ...] [--json-dir DIR]
  dq-sim check SCENARIO...

SCENARIO is a .toml/.json file or the name of a shipped scenario. A bad scenario or
parameter prints one line naming the field and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from dq_agent.sim.model import simulate
from dq_agent.sim.policies import POLICY_NAMES, PolicyError, make_policy
from dq_agent.sim.result import run_result
from dq_agent.sim.scenario import Scenario, ScenarioError, load_scenario, shipped_names


class UsageError(Exception):
    """Bad command line: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dq-sim", description="pre-copy live-migration simulator")
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list shipped scenarios")
    chk = sub.add_parser("check", help="validate scenario files")
    chk.add_argument("scenarios", nargs="+")
    for name in ("run", "compare"):
        sp = sub.add_parser(name)
        if name == "run":
            sp.add_argument("scenario")
            sp.add_argument("--json", metavar="OUT", help="file (one policy) or directory")
        else:
            sp.add_argument("scenarios", nargs="*", help="default: every shipped scenario")
            sp.add_argument("--json-dir", metavar="DIR", help="write one result file per run")
        sp.add_argument("--policy", action="append", choices=POLICY_NAMES, help="repeatable")
        sp.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="POLICY.KEY=VALUE",
            help="override a policy parameter (VALUE is JSON, e.g. true, 0.4, [1,2])",
        )
    return p


def _overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        policy, dot, param = key.partition(".")
        if not sep or not dot or not policy or not param:
            raise UsageError(f"--param {item!r}: expected POLICY.KEY=VALUE")
        if policy not in POLICY_NAMES:
            raise UsageError(f"--param {item!r}: unknown policy '{policy}'")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(policy, {})[param] = value
    return out


def _params_for(sc: Scenario, policy: str, cli: dict[str, dict[str, Any]]) -> dict[str, Any]:
    params = dict(sc.policy_params.get(policy, {}))
    params.update(cli.get(policy, {}))
    return params


def check_policy_params(sc: Scenario) -> None:
    """Every [policies.X] table of a scenario names a policy and valid parameters."""
    where = Path(sc.source).name if sc.source else sc.name
    for name in sc.reference_total_s:
        if name not in POLICY_NAMES:
            raise ScenarioError(f"{where}: reference.total_s.{name}: unknown policy")
    for name, params in sc.policy_params.items():
        if name not in POLICY_NAMES:
            raise ScenarioError(f"{where}: policies.{name}: unknown policy")
        try:
            make_policy(name, len(sc.vcpus), params)
        except PolicyError as e:
            raise ScenarioError(f"{where}: policies.{e}") from None


def _run_one(sc: Scenario, policy_name: str, cli: dict[str, dict[str, Any]]) -> dict[str, Any]:
    try:
        policy = make_policy(policy_name, len(sc.vcpus), _params_for(sc, policy_name, cli))
    except PolicyError as e:
        raise PolicyError(f"--param {e}") from None
    return run_result(sc, policy, simulate(sc, policy))


def _check_runs(
    scenarios: Sequence[Scenario], policies: Sequence[str], cli: dict[str, dict[str, Any]]
) -> None:
    """Build every policy once before running anything: no partial output on bad input."""
    for sc in scenarios:
        for p in policies:
            try:
                make_policy(p, len(sc.vcpus), _params_for(sc, p, cli))
            except PolicyError as e:
                raise PolicyError(f"--param {e}") from None


def load_checked(name: str) -> Scenario:
    sc = load_scenario(name)
    check_policy_params(sc)
    return sc


HEADER = (
    f"{'scenario':<22} {'policy':<14} {'conv':>4} {'total s':>9} {'downtime ms':>11} "
    f"{'sent GB':>8} {'iters':>5} {'min vCPU %':>10} {'mean vCPU %':>11} {'published s':>11}"
)


def table_row(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    kept = [v["throughput_retained"] * 100 for v in s["vcpus"]]
    down = "-" if s["downtime_ms"] is None else f"{s['downtime_ms']:.0f}"
    ref = doc["scenario"].get("reference", {}).get("total_s", {}).get(doc["policy"]["name"])
    published = "-" if ref is None else f"{ref:.1f}"
    return (
        f"{doc['scenario']['name']:<22} {doc['policy']['name']:<14} "
        f"{'yes' if s['converged'] else 'NO':>4} {s['total_time_s']:>9.1f} {down:>11} "
        f"{s['bytes_sent'] / 1e9:>8.2f} {s['iterations']:>5} {min(kept):>10.2f} "
        f"{sum(kept) / len(kept):>11.2f} {published:>11}"
    )


def _write(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def _cmd_run(args: argparse.Namespace) -> int:
    sc = load_checked(args.scenario)
    cli = _overrides(args.param)
    policies = args.policy or list(POLICY_NAMES)
    _check_runs([sc], policies, cli)
    docs = [_run_one(sc, p, cli) for p in policies]
    print(HEADER)
    for doc in docs:
        print(table_row(doc))
    if args.json:
        out = Path(args.json)
        if len(docs) == 1 and not out.is_dir():
            _write(docs[0], out)
        else:
            for doc in docs:
                _write(doc, out / f"{sc.name}-{doc['policy']['name']}.json")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    names = args.scenarios or shipped_names()
    scenarios = [load_checked(n) for n in names]  # all validated before any run
    cli = _overrides(args.param)
    policies = args.policy or list(POLICY_NAMES)
    _check_runs(scenarios, policies, cli)
    print(HEADER)
    for sc in scenarios:
        for p in policies:
            doc = _run_one(sc, p, cli)
            print(table_row(doc), flush=True)
            if args.json_dir:
                _write(doc, Path(args.json_dir) / f"{sc.name}-{p}.json")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.cmd == "list":
            for name in shipped_names():
                print(name)
            return 0
        if args.cmd == "check":
            for name in args.scenarios:
                load_checked(name)
                print(f"{name}: ok")
            return 0
        if args.cmd == "run":
            return _cmd_run(args)
        return _cmd_compare(args)
    except (ScenarioError, PolicyError, UsageError) as e:
        print(f"dq-sim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"dq-sim: error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
