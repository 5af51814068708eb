"""Resilience matrix: every role × every installed fault on the host under test.

For the topology under test it asserts what docs/design.md promises: the failure stayed inside the
fault's blast radius, nothing outside it was restarted, the service and every impacted guest came
back within budget, and no acknowledged write was lost. The monolithic baseline is measured and
recorded beside it (JUnit properties ``baseline.*``), not asserted: it is not contained.
"""

from harness.plugin import Windsor
from harness.scenario import Scenario


def test_fault_contained(windsor_scenario: Scenario, windsor: Windsor) -> None:
    result = windsor.run(windsor_scenario).candidate
    m, budgets = result.metrics, windsor.budgets

    assert not m.escaped, f"impact escaped the blast radius of {result.target.entity}: {sorted(m.escaped)}"
    assert not result.disturbed, f"restarted outside the blast radius: {result.disturbed}"
    assert m.acked_writes_lost == 0, (
        f"{m.acked_writes_lost} acknowledged write{'s' * (m.acked_writes_lost != 1)} lost: "
        "the guests' disks do not hold what blkback acknowledged")
    assert m.host_survived == (not result.blast.host_crash), (
        "host rebooted" if m.host_survived is False else "host survived a fault that crashes it"
    )
    assert m.service_restart_s is not None, f"{windsor_scenario.role} never became healthy again"
    assert m.service_restart_s <= budgets.restart_s, f"restart took {m.service_restart_s:.3f}s"
    assert m.guest_recovery_s is not None, (
        f"{windsor_scenario.role} answered its health probe {m.service_restart_s:.3f}s after the fault, but impacted "
        f"guest devices never progressed again: {sorted(m.impacted)}")
    assert m.guest_recovery_s <= budgets.recovery_s, f"guest recovery took {m.guest_recovery_s:.3f}s"
