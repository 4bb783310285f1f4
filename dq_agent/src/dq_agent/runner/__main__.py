import sys

from dq_agent.runner.cli import main

sys.exit(main())
