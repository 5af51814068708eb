"""One scenario on one topology, start to end:
boot → steady state → inject → (during) → hold → revert (always) → service healthy → guests
progress → observe → metrics. Every wait has a deadline and says what it waits for.

When anything ends the fault early — a failing `during` check, an exception, Ctrl-C, SIGTERM, a
pytest-timeout — the fault is reverted at once and the host is checked before it is let go
(`rollback`): the role healthy, every guest device progressing, no acknowledged write lost; what
was found is added to the exception as a note."""

from __future__ import annotations

import bisect
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from harness import reuse
from harness.backend.base import Host, Target
from harness.errors import HarnessError, HostError, NotSteady, UsageError
from harness.fault import Blast, Fault, describe_params, get_fault
from harness.metrics import PROBE, PROBES, TOOLSTACK, Metrics, Observation, PairImpact, compute, probe_late
from harness.model import GuestSpec, Pair, check_role, fleet, pairs
from harness.scenario import Budgets, RunOptions, Scenario
from harness.timeline import Timeline
from harness.topology import Topology, load_topology
from harness.waiting import wait_until

log = logging.getLogger("windsor")
QUIET_WINDOW_S = 0.3  # observed before the fault: each device's own jitter


@dataclass(frozen=True)
class CaseResult:
    scenario: Scenario
    topology: str
    target: Target
    blast: Blast
    metrics: Metrics
    impacts: dict[Pair, PairImpact]
    disturbed: tuple[str, ...]  # entities outside the blast radius that were restarted
    fault_params: str  # every parameter in effect, defaults included (k=v,k=v)
    fault_window_s: float
    observed_s: float  # how long after the fault every guest device was watched
    seed: int
    phases: Mapping[str, float]  # wall seconds: boot, steady (incl. the quiet window), fault, recovery, teardown
    host: str  # the host URL
    build: str  # what runs on the host (Host.build)
    timeline: Timeline  # every guest device's operations around the fault
    reused: bool = False  # the case ran on the topology the case before it left booted (harness/reuse.py)
    budgets: Budgets = field(default_factory=Budgets)  # the restart and recovery budgets it was judged against
    hits: tuple[float, ...] = (0.0,)  # when the fault acted, from the first hit (a crash loop acts several times)
    guest_events: Mapping[Pair, int] = field(default_factory=dict)  # what guests saw besides progress (EIO...)
    xenstore_late_s: float | None = None  # the other guests' xenstore round trips, how late at worst
    toolstack_late_s: float | None = None  # dom0's toolstack queries, how late at worst (None: the host rebooted)


@dataclass(frozen=True)
class FaultContext:
    """What a `during` check gets, while the fault holds."""

    host: Host
    topology: str
    target: Target
    fault: Fault
    guests: tuple[GuestSpec, ...]


During = Callable[[FaultContext], None]


def progressing(host: Host, want: frozenset[Pair], since: float, count: int) -> bool:
    """Every pair in `want` completed at least `count` operations after `since`."""
    progress = host.progress()
    for p in want:
        times = progress.get(p, [])
        if len(times) - bisect.bisect_right(times, since) < count:
            return False
    return True


def steady(host: Host, all_pairs: frozenset[Pair], timeout: float) -> bool:
    """Every guest device progressing (3 operations from now on), within `timeout`."""
    since = host.now()
    return wait_until("steady state: every guest device progressing",
                      lambda: progressing(host, all_pairs, since, 3), timeout)


def resolve(
    scenario: Scenario, opts: RunOptions, topology_name: str
) -> tuple[Topology, tuple[GuestSpec, ...], str | None]:
    check_role(scenario.role)
    topology = load_topology(topology_name)
    guests = fleet(opts.guests, opts.seed)
    fault_cls = get_fault(scenario.fault)
    if scenario.role not in fault_cls.roles():
        raise UsageError(f"{scenario.fault} applies to {', '.join(fault_cls.roles())} only, not {scenario.role}")
    guest = scenario.guest or fault_cls.choose_guest(scenario.role, guests)
    if scenario.role == "device-model" and guest not in [g.name for g in guests if g.hvm]:
        hvm = ", ".join(g.name for g in guests if g.hvm)
        raise UsageError(f"device-model fault on {guest!r}: it is not an HVM guest (HVM guests: {hvm})")
    if guest is not None and guest not in [g.name for g in guests]:
        raise UsageError(f"{scenario.id} on {guest!r}: no such guest (guests: g01 to {guests[-1].name})")
    return topology, guests, guest


def refusal(host: Host, fault: type[Fault], target: Target, allow_destructive: bool,
            what: str) -> tuple[str, str] | None:
    """Why the interlocks refuse `fault` on `target` of `host` (`what` names the case): a few
    words, and the one-line error with the fix; None when it may run."""
    if fault.destructive and not (host.test_host or allow_destructive):
        return ("not a test host",
                f"{host.spec.url} is not marked as a test host, and {fault.name} is destructive: "
                "set test_host = true for it in an inventory (?inventory=FILE), or pass --allow-destructive")
    if target.domain == "dom0" and not host.dom0_faults:
        return ("dom0 faults not allowed here",
                f"{what} would hit dom0 of {host.spec.url}, which does not allow dom0 faults: "
                "set dom0_faults = true in its inventory, or use --no-baseline or --baseline-junit")
    return None


def crashed_under(host: Host, fault: Fault, err: HostError) -> None:
    """The fault could not be reverted because the host stopped answering: did it crash? If it
    comes back rebooted (a dom0 that memory pressure drove to a kernel panic, on the lab), the
    reboot undid the fault and the case goes on to be judged: ``host_survived`` false, measured
    like any other outcome. If it does not, the error stands."""
    log.warning("could not revert %s on %s (%s): waiting up to %.0fs for the host to come back rebooted",
                fault.name, fault.target.entity, err, host.reboot_timeout_s)

    def rebooted() -> bool:
        try:
            return host.host_reboots() > 0
        except (HostError, OSError):
            return False

    if not wait_until("the host back after a crash", rebooted, host.reboot_timeout_s):
        raise err
    fault.reverted_at = host.now()
    log.warning("%s: the host crashed under %s and rebooted; the reboot undid it", host.spec.url, fault.name)


def rollback(host: Host, fault: Fault, healthy: Callable[[], bool], all_pairs: frozenset[Pair],
             exc: BaseException) -> None:
    """The fault was cut short by `exc`: revert it now, then check (bounded) that the host is
    back; the findings become a note on `exc` and a log line."""
    trigger = host.now()
    found = []
    try:
        fault.revert()
    except (HarnessError, OSError) as err:  # the host's own lease still ends it
        found.append(f"revert failed ({err}): the host ends {fault.lease.describe()} by itself")
    if fault.injected_at is None:
        return
    cause = type(exc).__name__
    if fault.reverted_at is not None and fault.reversible():
        found.append(f"{fault.name} of {fault.target.entity} reverted {max(0.0, fault.reverted_at - trigger):.3f}s "
                     f"after the {cause}")
    since = max(fault.reverted_at or trigger, trigger)
    try:
        back = wait_until("the host back after the rollback",
                          lambda: healthy() and progressing(host, all_pairs, since, 2), host.settle_timeout_s)
        found.append(f"every guest device progressing again {host.now() - since:.2f}s later" if back else
                     f"NOT every guest device progressing {host.settle_timeout_s:.0f}s later")
        found.append(f"{host.acked_writes_lost()} acknowledged writes lost")
    except KeyboardInterrupt:
        found.append("check of the host skipped (interrupted again)")
    except (HostError, OSError) as err:
        found.append(f"could not check the host: {err}")
    note = "windsor rollback: " + "; ".join(found)
    exc.add_note(note)
    log.warning("%s", note)
    if not isinstance(exc, Exception):  # an interrupt: pytest shows no note, so say it here
        print(note, file=sys.stderr)


def run_case(scenario: Scenario, opts: RunOptions, topology_name: str, during: During | None = None) -> CaseResult:
    topology, guests, guest = resolve(scenario, opts, topology_name)
    fault_cls = get_fault(scenario.fault)
    params = fault_cls.parse_params(dict(scenario.params))
    blast = fault_cls.blast(topology, scenario.role, guest, params)
    budgets = opts.budgets
    phases: dict[str, float] = {}
    mark = time.monotonic()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name], mark = now - mark, now

    key = (opts.host, topology.name, guests, opts.cadence_s, opts.seed)
    host, reused = reuse.take(opts.host, key, opts.reuse)
    clean = False
    try:
        guests = host.adapt(guests, opts.roles)
        all_pairs = pairs(guests)
        if reused and not steady(host, all_pairs, host.steady_timeout_s / 4):
            log.info("booting afresh on %s: the kept topology did not reach its steady state", opts.host)
            reuse.discard(host)
            host, reused = reuse.take(opts.host, key, False)
        if not reused:
            log.info("booting %s on %s with %d guests", topology.name, opts.host, len(guests))
            host.boot(topology, guests, opts.cadence_s, opts.seed)
        phase("boot")
        build = host.build()
        booted = host.now()
        if not reused and not steady(host, all_pairs, host.steady_timeout_s):
            stuck = sorted(p for p in all_pairs if not progressing(host, frozenset({p}), booted, 3))
            raise NotSteady(f"no steady state within {host.steady_timeout_s:.0f}s: not progressing {stuck}")
        t_steady = host.now()
        steady_timeout = host.steady_timeout_s
        ops = max(10, round(QUIET_WINDOW_S / opts.cadence_s))
        if not wait_until(f"{ops} operations of every device as the noise reference",
                          lambda: progressing(host, all_pairs, t_steady, ops), steady_timeout):
            raise HostError(f"steady state lost within {steady_timeout:.0f}s of being reached")
        phase("steady")
        target = fault_cls.aim(host.locate(scenario.role, guest))
        refused = refusal(host, fault_cls, target, opts.allow_destructive, f"{scenario.id} on {topology.name}")
        if refused:  # checked for the whole matrix before anything; again on the located target
            raise UsageError(refused[1])
        before = {e.name: e.incarnation for e in host.entities()}
        if target.entity not in before:
            raise HostError(f"{scenario.role} should be in {target.entity!r}, which is not on {opts.host} "
                            f"(running: {', '.join(sorted(before))}): check the topology and the inventory's roles")
        fault = fault_cls(host, target, params)
        hit_at: list[float] = []

        def healthy() -> bool:
            health = host.health(scenario.role, guest)
            since = health.ready_since
            t_hit = fault.last_hit  # a fault that repeats (a crash loop): its latest hit
            if health.ok and fault_cls.replaces_target and since is not None and since <= t_hit:
                return False  # still the incarnation that was hit
            if health.ok:
                hit_at.append(since if since is not None and since > t_hit else host.now())
            return health.ok

        try:
            fault.inject()
            if during is not None:
                during(FaultContext(host, topology.name, target, fault, guests))
            fault.hold()
        except BaseException as exc:
            rollback(host, fault, healthy, all_pairs, exc)
            raise
        try:
            fault.revert()
        except HostError as err:
            crashed_under(host, fault, err)
        t0 = fault.injected_at
        assert t0 is not None
        t_reverted = fault.reverted_at or host.now()
        restart_deadline = max(2 * budgets.restart_s, budgets.restart_s + 5.0)
        hit_at.clear()
        ok = wait_until(f"{scenario.role} healthy again", healthy, restart_deadline)
        restart_s = hit_at[0] - t0 if ok else None
        t_back = max(t_reverted, hit_at[0] if ok else host.now())
        recovery_deadline = max(2 * budgets.recovery_s, budgets.recovery_s + 5.0)
        recovered = wait_until("every guest device progressing again",
                               lambda: progressing(host, all_pairs, t_back, 2), recovery_deadline)
        phase("fault")
        t_calm, watch_until = host.now(), t0 + opts.watch_after_s
        if recovered:  # and a delayed consequence within the watch is seen too
            wait_until(f"{ops} operations of every device after recovery, and {opts.watch_after_s:g}s after the fault",
                       lambda: host.now() >= watch_until and progressing(host, all_pairs, t_calm, ops),
                       steady_timeout + opts.watch_after_s)
        else:  # never back: what the fault goes on doing within the watch is seen too (a guest frozen later)
            wait_until(f"the watch, {opts.watch_after_s:g}s after the fault",
                       lambda: host.now() >= watch_until, max(0.0, watch_until - host.now()) + 5.0, interval=0.5)
        t_end = host.now()
        after = {e.name: e.incarnation for e in host.entities()}
        progress = host.progress()
        states = host.device_states()
        lost = host.acked_writes_lost()  # since boot: a reused host had lost none (harness/reuse.py)
        survived = host.host_reboots() == 0
        phase("recovery")
        allowed = set(before) if blast.host_crash else {target.entity}
        disturbed = tuple(sorted(n for n, inc in before.items() if n not in allowed and after.get(n) != inc))
        made_again = frozenset(g.name for g in guests if not survived or after.get(g.name) != before.get(g.name))
        observed = Observation(progress, all_pairs, blast.expected(guests), (t_steady, t0), t0,
                               t_back if ok else t_end, t_end, opts.cadence_s, opts.impact_threshold_s, made_again)
        metrics, impacts = compute(observed, restart_s, lost, survived)
        late = probe_late(progress, PROBE, (t_steady, t0), t0, t_end, guest)
        # a host that rebooted took its probe with it: how late its toolstack was is its reboot
        ts_late = probe_late(progress, TOOLSTACK, (t_steady, t0), t0, t_end) if survived else None
        events = {p: n for p, ts in progress.items() if p not in all_pairs and p[1] not in PROBES
                  and (n := bisect.bisect_right(ts, t_end) - bisect.bisect_left(ts, t0))}
        clean = (ok and recovered and survived and lost == 0 and not disturbed and not metrics.escaped
                 and fault.reverted_at is not None)  # a role that never answered again is no host to hand on
    finally:
        reuse.give_back(host, key, clean, opts.reuse)
    phase("teardown")
    timeline = Timeline.cut(scenario.id, topology.name, opts.host, opts.cadence_s, progress, all_pairs, t_steady, t0,
                            t_end, t_reverted - t0, restart_s, metrics.guest_recovery_s, metrics.impacted,
                            metrics.expected, states)
    return CaseResult(scenario, topology.name, target, blast, metrics, impacts, disturbed, describe_params(params),
                      t_reverted - t0, t_end - t0, opts.seed, phases, opts.host, build, timeline, reused,
                      opts.budgets, tuple(h - t0 for h in fault.hits), events, late, ts_late)
