"""Nightly benchmark job: scenario matrix, history store, regression verdict, Pushgateway push.

JSONL was chosen for the history (see history.py): append-only, one self-contained line per
run, readable with grep/jq, diff-able, and safe to append from one writer without a server.
"""
