"""Hooks the Windsor plugin adds to pytest (``pytest_addhooks``); the docstrings are the contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.junit import Outcome


@pytest.hookspec
def pytest_windsor_result(item: pytest.Item, outcome: Outcome) -> None:
    """Called once per scenario, after the candidate (and baseline) ran and before the test's
    assertions, with the measured `Outcome`. Implementations must not raise and must not change
    the outcome; use it to export results (dashboards, extra artifacts)."""
