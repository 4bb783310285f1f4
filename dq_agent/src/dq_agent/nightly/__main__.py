import sys

from dq_agent.nightly.cli import main

sys.exit(main())
