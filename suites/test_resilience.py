"""Resilience matrix: every role × every installed fault on the host under test.

For the topology under test it asserts what docs/design.md promises, as the checks of
harness/checks.py (the report judges with the same ones): the failure stayed inside the fault's
blast radius, nothing outside it was restarted, no acknowledged write was lost, the host survived
unless the fault crashes it by design, and the service and every impacted guest came back within
budget. The monolithic baseline is measured and recorded beside it (JUnit properties
``baseline.*``), not asserted: it is not contained.
"""

from harness.checks import failures
from harness.junit import case_properties
from harness.plugin import Windsor
from harness.scenario import Scenario


def test_fault_contained(windsor_scenario: Scenario, windsor: Windsor) -> None:
    failed = failures(case_properties(windsor.run(windsor_scenario).candidate))
    assert not failed, "; ".join(failed)
