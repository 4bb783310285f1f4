"""Pre-copy live-migration simulator (`dq-sim`): modelled guests, the same engine."""
