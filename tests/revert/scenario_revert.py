"""The scenario that test_revert_matrix.py runs in a pytest of its own, then cuts short.

``WINDSOR_TRIGGER=assert|exception`` makes the check that runs while the fault holds fail;
signals (SIGINT, SIGTERM, SIGKILL) come from outside, a timeout from pytest-timeout
(``--timeout``). The moment of the failure (or of the test's start, for a timeout) goes to
``WINDSOR_TRIGGER_FILE`` on the machine's monotonic clock. Not collected by ``pytest tests``:
its name does not start with ``test_``.
"""

import os
import threading
import time
from collections.abc import Iterator

import pytest

from harness.plugin import Windsor
from harness.runner import FaultContext
from harness.scenario import Scenario

TRIGGER = os.environ.get("WINDSOR_TRIGGER", "")


def mark_trigger() -> None:
    with open(os.environ["WINDSOR_TRIGGER_FILE"], "w", encoding="ascii") as fh:
        fh.write(f"{time.monotonic():.6f}")


@pytest.fixture(autouse=True)
def started() -> Iterator[None]:
    if TRIGGER == "timeout":
        mark_trigger()  # pytest-timeout's clock starts with the test
    yield


def test_fault_held(windsor_scenario: Scenario, windsor: Windsor) -> None:
    def during(ctx: FaultContext) -> None:
        if TRIGGER in ("assert", "exception"):
            mark_trigger()
            if TRIGGER == "assert":
                assert ctx.fault.reverted_at is not None, "a check made while the fault holds failed"
            raise RuntimeError("a check made while the fault holds raised")
        if TRIGGER == "sigkill" and not ctx.fault.window_s:  # an instant fault: die right after it
            mark_trigger()
            threading.Event().wait(60)  # the driver kills us here

    scenario = windsor_scenario
    if os.environ.get("WINDSOR_GUEST"):  # a device model of a guest that may not exist
        scenario = Scenario(scenario.role, scenario.fault, scenario.params, os.environ["WINDSOR_GUEST"])
    windsor.run(scenario, during=during)
