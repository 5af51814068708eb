"""The measuring is right: a stall of known length is measured as that length, a guest that
does not depend on the role shows no impact, and the budgets can fail a test."""

import pytest

from harness.runner import run_case
from harness.scenario import RunOptions, Scenario

OPTS = RunOptions()


@pytest.mark.parametrize("duration", [0.3, 1.0])
def test_stall_of_known_length_is_measured_within_tolerance(duration: float) -> None:
    result = run_case(Scenario("netback", "stall", (("duration_s", str(duration)),)), OPTS, "disaggregated")
    true_s, m = result.fault_window_s, result.metrics
    assert abs(true_s - duration) < 0.05, f"the stall itself lasted {true_s:.3f}s"
    # a gap is seen at cadence granularity: at most one cadence short, a few ms of scheduling long
    assert true_s - OPTS.cadence_s - 0.005 <= m.max_guest_downtime_s <= true_s + 0.015, (
        f"measured {m.max_guest_downtime_s:.4f}s for a {true_s:.4f}s stall"
    )
    assert m.service_restart_s is not None and abs(m.service_restart_s - true_s) < 0.05
    assert {d for _, d in m.impacted} == {"net"}


def test_unrelated_guests_show_zero_impact() -> None:
    result = run_case(Scenario("blkback", "stall", (("duration_s", "1.0"),)), OPTS, "disaggregated")
    disk_guests = {g for g, d in result.metrics.expected}
    assert disk_guests, "the fleet must have disk guests for this test to mean anything"
    for (guest, device), impact in result.impacts.items():
        if device != "disk":
            assert impact.downtime_s < OPTS.impact_threshold_s, f"{guest}:{device} saw {impact.downtime_s:.3f}s"
    impacted_guests = {g for g, _ in result.metrics.impacted}
    assert impacted_guests == disk_guests
    assert result.metrics.guests_impacted < result.metrics.guests_total


def test_a_stalled_device_model_stops_its_guest_whole_and_no_other() -> None:
    """Its guest's vCPU waits on the emulated request the device model does not answer, so every
    device of that guest stops, as measured on Xen 4.17 (docs/design.md), and no other guest's."""
    result = run_case(Scenario("device-model", "stall", (("duration_s", "0.5"),)), OPTS, "disaggregated")
    assert {g for g, _ in result.metrics.impacted} == {"g01"}
    assert {("g01", "emul"), ("g01", "heartbeat")} <= result.metrics.impacted, result.metrics.impacted
    assert result.target.entity == "g01-dm" and not result.disturbed
