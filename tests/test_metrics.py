"""The downtime arithmetic, on hand-made timelines (a unit test of pure functions)."""

from harness.metrics import Observation, compute, pair_impact

NET = ("g1", "net")


def obs(t0: float, t_end: float, own_until: float | None = None, times: list[float] | None = None,
        exposed: bool = False) -> Observation:
    """An observation of one device (in the blast radius if `exposed`) at a 10 ms cadence and a 50 ms
    threshold; quiet before t0."""
    return Observation({NET: times or []}, frozenset({NET}), frozenset({NET}) if exposed else frozenset(),
                       (0.0, t0), t0, t0 if own_until is None else own_until, t_end, 0.01, 0.05)


def steady(start: float, end: float, cadence: float = 0.01) -> list[float]:
    return [round(start + i * cadence, 4) for i in range(round((end - start) / cadence) + 1)]


def test_gap_across_fault_is_downtime_beyond_cadence() -> None:
    times = [0.00, 0.01, 0.02, 0.52, 0.53]
    impact = pair_impact(times, obs(0.021, 0.6))
    assert abs(impact.downtime_s - 0.49) < 1e-9
    assert impact.impacted and impact.gap_end == 0.52 and impact.outages == 1


def test_gaps_before_the_fault_do_not_count() -> None:
    times = [0.0, 1.0, 1.01, 1.02, 1.03]
    impact = pair_impact(times, obs(1.015, 1.04))
    assert impact.downtime_s < 0.01 and not impact.impacted


def test_device_that_never_came_back_has_no_recovery() -> None:
    impact = pair_impact([0.0, 0.01], obs(0.015, 2.0))
    assert impact.impacted and impact.gap_end is None
    metrics, _ = compute(obs(0.015, 2.0, times=[0.0, 0.01]), 0.1, 0, True)
    assert metrics.guest_recovery_s is None
    assert metrics.escaped == {NET}


def test_a_gap_within_the_devices_own_jitter_is_not_an_impact() -> None:
    times = [0.0, 0.01, 0.09, 0.10, 0.11, 0.20, 0.21, 0.22]  # 70 ms hiccups before and after t0
    noisy = pair_impact(times, obs(0.15, 0.25), noise=0.07)
    quiet = pair_impact(times, obs(0.15, 0.25), noise=0.0)
    assert abs(noisy.downtime_s - 0.08) < 1e-9
    assert quiet.impacted and not noisy.impacted


def test_a_late_hiccup_is_noise_but_a_late_outage_is_not() -> None:
    base = steady(0.0, 0.49)  # steady until 0.49, fault at t0 = 0.1
    hiccup = [t for t in base if not 0.30 < t < 0.37] + [0.5]
    outage = [t for t in base if t <= 0.25] + [0.6]  # silent 0.35 s, from long after the fault
    assert not pair_impact(hiccup, obs(0.1, 0.6)).impacted
    late = pair_impact(outage, obs(0.1, 0.65))
    assert late.impacted and late.gap_end == 0.6


def test_a_fault_that_comes_and_goes_counts_every_outage_and_recovers_at_the_last() -> None:
    """A flap: three 0.2 s stalls, 0.2 s apart, from t0 = 1.0 until 2.0. Each outage inside the
    fault's own period is the fault's, however late in it; recovery is the end of the last one
    (measured before: one outage, recovery 0.2 s, while the device was down again until 2.0)."""
    times = steady(0.0, 1.0) + steady(1.2, 1.4) + steady(1.6, 1.8) + steady(2.0, 3.0)
    flap = obs(1.0, 3.0, own_until=2.0, times=times, exposed=True)
    impact = pair_impact(times, flap)
    assert impact.outages == 3
    assert abs(impact.total_downtime_s - 3 * 0.19) < 1e-6
    assert impact.gap_end == 2.0
    metrics, _ = compute(flap, 1.0, 0, True)
    assert abs(metrics.guest_recovery_s - 1.0) < 1e-9  # type: ignore[operator]
    assert metrics.max_guest_outages == 3 and abs(metrics.max_guest_total_downtime_s - 0.57) < 1e-6
    # the same outages after a fault that was over at once would be late and too short to count;
    # and so are they on a device outside the blast radius, however long the fault acts
    assert pair_impact(times, obs(1.0, 3.0, own_until=1.0, times=times, exposed=True)).outages == 1
    assert pair_impact(times, obs(1.0, 3.0, own_until=2.0, times=times), exposed=False).outages == 1


def test_outside_the_blast_radius_only_an_immediate_outage_counts_at_the_threshold() -> None:
    """A 90 ms stall of every process on a loaded machine, just after a 1 s window ended: the
    device in the blast radius counts it (it is the fault's period), a bystander does not (it is
    late for it: it must be 4 x the threshold); a bystander stopped at the hit counts at once."""
    hiccup = steady(0.0, 1.03) + steady(1.12, 3.0)
    own = obs(0.0 + 0.5, 3.0, own_until=1.51, times=hiccup)
    assert pair_impact(hiccup, own, exposed=True).outages == 1
    assert pair_impact(hiccup, own, exposed=False).outages == 0
    at_once = steady(0.0, 0.5) + steady(0.6, 3.0)
    assert pair_impact(at_once, obs(0.5, 3.0, own_until=1.51, times=at_once), exposed=False).outages == 1


def test_recovery_is_the_end_of_the_last_outage_not_the_longest() -> None:
    times = steady(0.0, 1.0) + steady(1.6, 1.7) + steady(1.8, 3.0)  # 0.6 s, then 0.1 s
    impact = pair_impact(times, obs(1.0, 3.0, own_until=1.8, times=times, exposed=True))
    assert impact.outages == 2 and impact.gap_end == 1.8 and abs(impact.downtime_s - 0.59) < 1e-6


def test_noise_is_measured_before_the_fault_only() -> None:
    """A delayed consequence in the watch after recovery must not raise the bar it is judged by."""
    times = steady(0.0, 1.2) + steady(1.8, 3.0)  # late: silent 0.6 s from 1.2, fault at 1.0 over at once
    metrics, impacts = compute(obs(1.0, 3.0, times=times), 0.01, 0, True)
    assert impacts[NET].noise_s < 0.001 and metrics.impacted == {NET}


def test_a_guest_made_again_is_impacted_however_short_its_gap() -> None:
    """sim:// reboots a whole host in about 0.1 s: with a noisy quiet window (a busy machine), the
    reboot's gap fell under twice the noise and a guest killed with its host counted as untouched."""
    times = [t for t in steady(0.0, 1.0) if not 0.10 < t < 0.15 and not 0.50 < t < 0.57]
    # 40 ms of jitter before the fault (needed: 2 × 0.04), then a 60 ms gap at the fault
    seen = obs(0.505, 1.0, times=times)
    assert not compute(seen, None, 0, False)[0].guests_impacted  # the gap alone is under 2 × noise
    again = Observation(seen.progress, seen.pairs, seen.expected, seen.quiet, seen.t0, seen.own_until, seen.t_end,
                        seen.cadence, seen.threshold, frozenset({"g1"}))
    impact = pair_impact(times, again, 0.04, restarted=True)
    assert impact.impacted and impact.outages == 1 and impact.gap_end == 0.57
    metrics, _ = compute(again, None, 0, False)
    assert metrics.guests_impacted == 1 and metrics.guest_recovery_s is not None
    assert abs(metrics.guest_recovery_s - (0.57 - 0.505)) < 1e-9


def test_xenstore_lateness_is_the_longest_probe_gap_beyond_its_usual() -> None:
    from harness.metrics import PROBE, probe_late
    usual = steady(0.0, 1.0, 0.05)  # the probe every 50 ms before the fault at 1.0
    slow = [*usual, 1.05, 1.10, 1.45, 1.50, 1.55]  # one round trip 300 ms late
    storming = [*usual, 2.0]  # the guest the fault drives: not counted
    progress = {("g1", "xs"): slow, ("g2", "xs"): storming, ("g1", "net"): steady(0.0, 1.6)}
    late = probe_late(progress, PROBE, (0.0, 1.0), 1.0, 1.6, skip="g2")
    assert late is not None and abs(late - 0.30) < 1e-9
    assert abs((probe_late(progress, PROBE, (0.0, 1.0), 1.0, 1.6) or 0) - 0.55) < 1e-9  # g2 counted: silent to the end
    assert probe_late({("g1", "net"): steady(0.0, 1.6)}, PROBE, (0.0, 1.0), 1.0, 1.6) is None  # no probe: no figure


def test_toolstack_lateness_takes_its_usual_period_from_before_the_quiet_window() -> None:
    """dom0's toolstack probe runs every second; a 0.5 s quiet window holds one of its records,
    so its usual gap comes from the records before it, not from nothing."""
    from harness.metrics import DOM0, TOOLSTACK, probe_late
    ticks = [*steady(0.0, 3.0, 1.0), 5.5, 6.5]  # 0, 1, 2, 3 then 2.5 s without an answer (a list took 2.5 s)
    progress = {(DOM0, TOOLSTACK): ticks, ("g1", "xs"): steady(0.0, 7.0, 0.1)}
    late = probe_late(progress, TOOLSTACK, (2.6, 3.1), 3.1, 7.0)
    assert late is not None and abs(late - 1.5) < 1e-9  # the 2.5 s gap less its usual 1 s
    assert probe_late(progress, TOOLSTACK, (2.6, 3.1), 3.1, 7.0, skip=DOM0) is None  # skipped: nothing else probes it
