"""Before anything is touched: what every scenario of the matrix would hit (`plan`), the interlocks
over all of it (`check_interlocks`), and the table ``--dry-run`` prints (`describe`).

Nothing here boots, connects to or changes a host: a host object is only asked what its URL and
inventory say (`Host.test_host`, `Host.dom0_faults`, `Host.planned_target`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.backend.base import Host, Target
from harness.errors import UsageError
from harness.fault import describe_params, get_fault
from harness.runner import refusal as runner_refusal
from harness.runner import resolve
from harness.scenario import RunOptions, Scenario


@dataclass(frozen=True)
class PlannedCase:
    scenario: Scenario
    topology: str
    role: str  # "candidate" or "baseline"
    target: Target
    params: str
    window_s: float
    lease_s: float | None  # None: the fault leaves nothing to undo
    host_crash: bool
    expected: tuple[str, ...]  # the guest:device pairs that may notice
    guests_total: int
    skipped: str | None  # why the host cannot run it


def plan(opts: RunOptions, host: Host, scenarios: Sequence[Scenario], baseline: bool) -> list[PlannedCase]:
    out = []
    for scenario in scenarios:
        fault_cls = get_fault(scenario.fault)
        params = fault_cls.parse_params(dict(scenario.params))
        names = [("candidate", opts.topology)] + ([("baseline", opts.baseline_topology)] if baseline else [])
        for kind, name in names:
            topology, guests, guest = resolve(scenario, opts, name)
            guests = host.adapt(guests, opts.roles)
            target = fault_cls.aim(host.planned_target(topology, scenario.role, guest))
            fault = fault_cls(host, target, params)
            blast = fault_cls.blast(topology, scenario.role, guest, params)
            out.append(PlannedCase(
                scenario, topology.name, kind, target,
                describe_params(params) or "-",
                fault.window_s, fault.lease.total_s if fault_cls.reversible() else None, blast.host_crash,
                tuple(f"{g}:{d}" for g, d in sorted(blast.expected(guests))), len(guests),
                type(host).cannot(scenario.role, scenario.fault),
            ))
    return out


def refusal(opts: RunOptions, host: Host, case: PlannedCase) -> tuple[str, str] | None:
    """Why the interlocks refuse `case` on `host`: (a few words, the one-line error with the fix)."""
    if case.skipped:
        return None
    what = f"{case.scenario.id} on {case.topology} ({'the baseline' if case.role == 'baseline' else '--topology'})"
    return runner_refusal(host, get_fault(case.scenario.fault), case.target, opts.allow_destructive, what)


def check_interlocks(opts: RunOptions, host: Host, cases: Sequence[PlannedCase]) -> None:
    """UsageError (one line, with the fix) on the first case the host must not run."""
    for case in cases:
        refused = refusal(opts, host, case)
        if refused:
            raise UsageError(refused[1])


def describe(opts: RunOptions, host: Host, cases: Sequence[PlannedCase]) -> str:
    """The dry run: one row per case that would run, what it would hit, with what, how long;
    and the cases the interlocks would refuse, with why."""
    kind = "a test host" if host.test_host else "NOT a test host"
    dom0 = "dom0 faults allowed" if host.dom0_faults else "dom0 faults not allowed"
    refused = {id(c): r[0] for c in cases if (r := refusal(opts, host, c))}
    runs = [c for c in cases if not c.skipped and id(c) not in refused]
    rows = [("scenario", "topology", "target", "fault", "params", "window", "lease", "who may notice")]
    for c in cases:
        if c.skipped:
            rows.append((c.scenario.id, c.topology, "-", c.scenario.fault, "-", "-", "-", f"skipped: {c.skipped}"))
            continue
        notice = (f"HOST CRASH: all {c.guests_total} guests" if c.host_crash else
                  f"{len({p.split(':')[0] for p in c.expected})} of {c.guests_total} guests: {' '.join(c.expected)}"
                  if c.expected else f"no guest (0 of {c.guests_total})")
        if id(c) in refused:
            notice = f"REFUSED ({refused[id(c)]}): {notice}"
        rows.append((c.scenario.id, f"{c.topology} ({c.role})", c.target.entity, c.scenario.fault, c.params,
                     f"{c.window_s:g}s" if c.window_s else "instant", f"{c.lease_s:g}s" if c.lease_s else "-", notice))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join([*(col.ljust(w) for col, w in zip(r[:-1], widths, strict=True)), r[-1]]) for r in rows]
    head = (f"windsor dry run: {host.spec.url} ({kind}, {dom0}); {len(runs)} fault injections would run, "
            f"{len(refused)} would be refused, {len(cases) - len(runs) - len(refused)} skipped; nothing was touched")
    return "\n".join([head, *lines])
