"""A pytest plugin for tests/test_fleet.py (``-p fleet_gate``): once the session has taken its
host (and its host lease), hold it before the first test until the file ``$WINDSOR_GATE`` exists
(at most 120 s), so that a test can act while the run holds its host: start another run against
it, interrupt it, kill it."""

from __future__ import annotations

import os
import sys

import pytest

from harness.waiting import wait_until

GATE_TIMEOUT_S = 120.0


def pytest_collection_finish(session: pytest.Session) -> None:
    gate = os.environ.get("WINDSOR_GATE")
    if not gate or session.config.option.collectonly:
        return
    print(f"fleet_gate: pid {os.getpid()} holds until {gate} exists", file=sys.stderr, flush=True)
    if not wait_until(f"the gate {gate}", lambda: os.path.exists(gate), GATE_TIMEOUT_S, quiet=True):
        pytest.exit(f"fleet_gate: {gate} never appeared")
