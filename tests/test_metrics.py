"""The downtime arithmetic, on hand-made timelines (a unit test of pure functions)."""

from harness.metrics import compute, pair_impact


def test_gap_across_fault_is_downtime_beyond_cadence() -> None:
    times = [0.00, 0.01, 0.02, 0.52, 0.53]
    impact = pair_impact(times, t0=0.021, t_end=0.6, cadence=0.01, threshold=0.05)
    assert abs(impact.downtime_s - 0.49) < 1e-9
    assert impact.impacted and impact.gap_end == 0.52


def test_gaps_before_the_fault_do_not_count() -> None:
    times = [0.0, 1.0, 1.01, 1.02, 1.03]
    impact = pair_impact(times, t0=1.015, t_end=1.04, cadence=0.01, threshold=0.05)
    assert impact.downtime_s < 0.01 and not impact.impacted


def test_device_that_never_came_back_has_no_recovery() -> None:
    impact = pair_impact([0.0, 0.01], t0=0.015, t_end=2.0, cadence=0.01, threshold=0.05)
    assert impact.impacted and impact.gap_end is None
    metrics, _ = compute({("g1", "net"): [0.0, 0.01]}, frozenset({("g1", "net")}), frozenset(),
                         ((0.0, 0.015),), 0.015, 2.0, 0.01, 0.05, 0.1, 0, True)
    assert metrics.guest_recovery_s is None
    assert metrics.escaped == {("g1", "net")}


def test_a_gap_within_the_devices_own_jitter_is_not_an_impact() -> None:
    times = [0.0, 0.01, 0.09, 0.10, 0.11, 0.20, 0.21, 0.22]  # 70 ms hiccups before and after t0
    noisy = pair_impact(times, t0=0.15, t_end=0.25, cadence=0.01, threshold=0.05, noise=0.07)
    quiet = pair_impact(times, t0=0.15, t_end=0.25, cadence=0.01, threshold=0.05, noise=0.0)
    assert abs(noisy.downtime_s - 0.08) < 1e-9
    assert quiet.impacted and not noisy.impacted


def test_a_late_hiccup_is_noise_but_a_late_outage_is_not() -> None:
    base = [i * 0.01 for i in range(50)]  # steady until 0.49, fault at t0 = 0.1
    hiccup = [t for t in base if not 0.30 < t < 0.37] + [0.5]
    outage = [t for t in base if t <= 0.25] + [0.6]  # silent 0.35 s, from long after the fault
    assert not pair_impact(hiccup, t0=0.1, t_end=0.6, cadence=0.01, threshold=0.05).impacted
    late = pair_impact(outage, t0=0.1, t_end=0.65, cadence=0.01, threshold=0.05)
    assert late.impacted and late.gap_end == 0.6
