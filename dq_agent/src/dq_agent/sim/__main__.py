import sys

from dq_agent.sim.cli import main

sys.exit(main())
