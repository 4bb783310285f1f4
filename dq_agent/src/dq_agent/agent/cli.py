"""`dq-agent run --config FILE` and `dq-agent check-config FILE`.

A bad config prints ONE line naming the field and exits 2 (no traceback, nothing started).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dq_agent.agent.config import ConfigError, load

DEFAULT_CONFIG = Path("/etc/dq-agent/agent.toml")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="dq-agent", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run the agent")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file", type=Path)
    args = ap.parse_args(argv)

    path: Path = args.config if args.cmd == "run" else args.file
    try:
        cfg = load(path)
    except ConfigError as e:
        print(f"dq-agent: config error: {e}", file=sys.stderr)
        return 2
    if args.cmd == "check-config":
        print(f"dq-agent: {path}: ok")
        return 0

    from dq_agent.agent import log
    from dq_agent.agent.daemon import Agent

    log.setup(cfg.log_level)
    return Agent(cfg).run()


if __name__ == "__main__":
    sys.exit(main())
