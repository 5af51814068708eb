"""Fault plugins shipped with the harness (registered in pyproject's ``harness.faults``)."""
