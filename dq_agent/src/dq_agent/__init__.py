"""dqlab: dirty-quota live-migration auto-converge testbed (engine, simulator, agent, harness)."""

__version__ = "0.1.0"
