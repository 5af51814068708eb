"""Figures for this machine: matrix wall time, stall accuracy, restart times, scaling.

Run from the repository root: ``python -m bench.bench [--quick]``. Prints plain-text tables and
writes the same figures to ``out/bench.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

from harness.backend import get_host
from harness.backend.sim import SimHost
from harness.model import ROLES, fleet, pairs
from harness.runner import QUIET_WINDOW_S, CaseResult, progressing, run_case
from harness.scenario import RunOptions, Scenario, matrix
from harness.topology import load_topology
from harness.waiting import wait_until

TOPOLOGIES = ("disaggregated", "monolithic")
QUICK_ROLES = ("netback", "console")
STALLS_S = (0.2, 0.5, 2.0)
CADENCES_S = (0.01, 0.005)
SCALE_CADENCE_S = 0.5  # 500 guests × 4 devices at 500 ms: the host's own load stays under one core here
SCALE_REPEATS = 3
SCALE_SIZES, QUICK_SCALE_SIZES = (10, 100, 500), (10, 50)
STEADY_TIMEOUT_S = 120.0
OBSERVE_S = 3.0
RATIO_GOAL, STALL_GOAL_MS = 1.2, 5.0
SCALE_GOAL, CPU_FLAT_GOAL = 5.5, 1.2  # t(500)/t(100); the harness's CPU per guest, largest over 100 guests
OUT = Path("out") / "bench.json"

Key = tuple[str, str, str]  # (role, fault, topology), default run options


def fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [list(header), *([fmt(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n== {title} ==")
    for row in cells:
        rest = (c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        print("  ".join([row[0].ljust(widths[0]), *rest]))


def timed(scenario: Scenario, opts: RunOptions, topology: str) -> tuple[CaseResult, float]:
    start = time.monotonic()
    result = run_case(scenario, opts, topology)
    return result, time.monotonic() - start


def inherent(r: CaseResult, watch_after_s: float) -> float:
    """Time a run cannot avoid: the quiet window before the fault; then the fault window, restart or
    recovery (all measured from injection, so they contain the window), whichever is longest, and a
    quiet window after it — or the watch after the fault, if that is longer."""
    m = r.metrics
    back = max(r.fault_window_s, m.guest_recovery_s or 0.0, m.service_restart_s or 0.0)
    return QUIET_WINDOW_S + max(back + QUIET_WINDOW_S, watch_after_s)


def bench_matrix(quick: bool, cache: dict[Key, CaseResult]) -> dict[str, Any]:
    opts = RunOptions(roles=QUICK_ROLES if quick else ())
    runs: list[dict[str, Any]] = []
    start = time.monotonic()
    for topology in TOPOLOGIES:
        for sc in matrix(opts):
            result, wall = timed(sc, opts, topology)
            cache[(sc.role, sc.fault, topology)] = result
            m = result.metrics
            runs.append({"topology": topology, "scenario": sc.id, "wall_s": wall,
                         "window_s": result.fault_window_s, "recovery_s": m.guest_recovery_s,
                         "restart_s": m.service_restart_s,
                         "inherent_s": inherent(result, opts.watch_after_s), "phases": dict(result.phases)})
    total = time.monotonic() - start
    table("1. matrix wall time", ["topology", "scenario", "wall s", "window s", "recovery s", "restart s",
                                  "inherent s", "wall/inh"],
          [[r["topology"], r["scenario"], r["wall_s"], r["window_s"], r["recovery_s"], r["restart_s"],
            r["inherent_s"], r["wall_s"] / r["inherent_s"]] for r in runs])
    n = len(runs)
    inh = sum(r["inherent_s"] for r in runs)
    phases = {k: sum(r["phases"][k] for r in runs) / n for k in runs[0]["phases"]}
    print(f"runs {n}: total wall {total:.1f} s, inherent {inh:.1f} s, ratio {total / inh:.2f} "
          f"(goal <= {RATIO_GOAL}); per run: wall {total / n:.2f} s, inherent {inh / n:.2f} s")
    print("  mean wall per phase: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items()))
    return {"runs": runs, "total_wall_s": total, "inherent_s": inh, "ratio": total / inh, "mean_phases_s": phases}


def bench_stall() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for cadence in CADENCES_S:
        for duration in STALLS_S:
            sc = Scenario("netback", "stall", (("duration_s", f"{duration:g}"),))
            result, _ = timed(sc, RunOptions(cadence_s=cadence), "disaggregated")
            measured, true = result.metrics.max_guest_downtime_s, result.fault_window_s
            error_ms = (measured - true) * 1000
            rows.append({"cadence_ms": cadence * 1000, "stall_s": duration, "true_s": true,
                         "measured_s": measured, "error_ms": error_ms, "ok": abs(error_ms) <= STALL_GOAL_MS})
    table(f"2. stall accuracy (netback, disaggregated; goal ±{STALL_GOAL_MS:g} ms)",
          ["cadence ms", "stall s", "true window s", "measured s", "error ms", "within goal"],
          [[f"{r['cadence_ms']:g}", f"{r['stall_s']:g}", r["true_s"], r["measured_s"],
            f"{r['error_ms']:+.1f}", "yes" if r["ok"] else "NO"] for r in rows])
    return rows


def bench_restart(cache: dict[Key, CaseResult]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for role in ROLES:
        for topology in TOPOLOGIES:
            key = (role, "kill", topology)
            reused = key in cache
            result = cache[key] if reused else run_case(Scenario(role, "kill"), RunOptions(), topology)
            m = result.metrics
            rows.append({"role": role, "topology": topology, "restart_s": m.service_restart_s,
                         "recovery_s": m.guest_recovery_s, "impacted": m.guests_impacted,
                         "total": m.guests_total, "host_survived": m.host_survived, "from_matrix": reused})
    table("3. restart time per role (kill)",
          ["role", "topology", "restart s", "recovery s", "impacted", "host"],
          [[r["role"], r["topology"], r["restart_s"], r["recovery_s"], f"{r['impacted']}/{r['total']}",
            "survived" if r["host_survived"] else "crashed"] for r in rows])
    return rows


def cpu_s(proc: psutil.Process) -> float | None:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def host_procs(host: SimHost) -> dict[int, psutil.Process]:
    assert host.manager is not None, "boot first"
    root = psutil.Process(host.manager.pid)
    return {p.pid: p for p in (root, *root.children(recursive=True))}


def scale_one(guests: int) -> dict[str, Any]:
    specs = fleet(guests, 0)
    want = pairs(specs)
    host = get_host("sim://")
    if not isinstance(host, SimHost):
        raise TypeError(f"sim:// gave a {type(host).__name__}, not a SimHost")
    with host:
        start = time.monotonic()
        host.boot(load_topology("disaggregated"), specs, SCALE_CADENCE_S, 0)
        booted = host.now()
        boot_s = time.monotonic() - start
        if not wait_until(f"steady state of {guests} guests", lambda: progressing(host, want, booted, 3),
                          STEADY_TIMEOUT_S):
            raise RuntimeError(f"{guests} guests: no steady state within {STEADY_TIMEOUT_S:g} s")
        steady_s = host.now() - booted
        me, procs = psutil.Process(), host_procs(host)
        before = {pid: cpu_s(p) for pid, p in procs.items()}
        me_before = cpu_s(me) or 0.0
        t0 = time.monotonic()
        end = t0 + OBSERVE_S

        def observe() -> bool:  # the harness polls the records as run_case's waits do
            progressing(host, want, t0, 1)
            return time.monotonic() >= end

        wait_until("observation window", observe, OBSERVE_S + 10.0, quiet=True)
        elapsed = time.monotonic() - t0
        me_used = (cpu_s(me) or 0.0) - me_before
        after = host_procs(host)
        used = 0.0
        for pid, proc in after.items():
            now, then = cpu_s(proc), before.get(pid)
            if now is not None:
                used += now - (then if pid in procs and then is not None else 0.0)
    return {"guests": guests, "boot_s": boot_s, "boot_ms_per_guest": boot_s * 1000 / guests,
            "steady_s": steady_s, "procs": len(after), "host_cpu_pct": 100 * used / elapsed,
            "harness_cpu_pct": 100 * me_used / elapsed}


def bench_scaling(quick: bool) -> list[dict[str, Any]]:
    """Each size booted SCALE_REPEATS times: the run with the median boot time (one boot of 100
    guests varied 1.5–2.1 s here)."""
    rows = []
    for n in QUICK_SCALE_SIZES if quick else SCALE_SIZES:
        runs = sorted((scale_one(n) for _ in range(SCALE_REPEATS)), key=lambda r: float(r["boot_s"]))
        rows.append(runs[len(runs) // 2])
    rows[0]["marginal_ms_per_guest"] = None
    for a, b in itertools.pairwise(rows):
        b["marginal_ms_per_guest"] = (b["boot_s"] - a["boot_s"]) * 1000 / (b["guests"] - a["guests"])
    table(f"4. scaling (disaggregated, cadence {SCALE_CADENCE_S * 1000:g} ms, median boot of {SCALE_REPEATS}, "
          f"CPU over {OBSERVE_S:g} s, % of one core)",
          ["guests", "boot s", "ms/guest", "marginal ms/guest", "steady s", "host procs", "host CPU %",
           "harness CPU %"],
          [[r["guests"], r["boot_s"], f"{r['boot_ms_per_guest']:.1f}",
            "-" if r["marginal_ms_per_guest"] is None else f"{r['marginal_ms_per_guest']:.1f}",
            r["steady_s"], r["procs"], f"{r['host_cpu_pct']:.1f}", f"{r['harness_cpu_pct']:.1f}"]
           for r in rows])
    return rows


def goals(mat: dict[str, Any], stall: list[dict[str, Any]], scaling: list[dict[str, Any]]) -> dict[str, Any]:
    worst = max(abs(r["error_ms"]) for r in stall)
    by_n = {r["guests"]: r for r in scaling}
    big, ref = scaling[-1], by_n.get(100, scaling[0])
    growth = big["boot_s"] / ref["boot_s"]
    growth_goal = SCALE_GOAL * (big["guests"] / ref["guests"]) / 5  # 5.5 for 500 over 100
    cpu = (big["harness_cpu_pct"] / big["guests"]) / (ref["harness_cpu_pct"] / ref["guests"])
    out = {"matrix_ratio": mat["ratio"], "matrix_ok": mat["ratio"] <= RATIO_GOAL,
           "stall_worst_error_ms": worst, "stall_ok": worst <= STALL_GOAL_MS,
           "boot_growth": growth, "scaling_ok": growth <= growth_goal,
           "harness_cpu_per_guest_ratio": cpu, "cpu_flat_ok": cpu <= CPU_FLAT_GOAL}
    yes = {True: "yes", False: "NO"}
    table("goals", ["goal", "value", "met"], [
        [f"matrix wall/inherent <= {RATIO_GOAL}", f"{mat['ratio']:.2f}", yes[out["matrix_ok"]]],
        [f"stall error within ±{STALL_GOAL_MS:g} ms", f"worst {worst:.1f} ms", yes[out["stall_ok"]]],
        [f"boot t({big['guests']})/t({ref['guests']}) <= {growth_goal:g}", f"{growth:.2f}", yes[out["scaling_ok"]]],
        [f"harness CPU per guest, {big['guests']} over {ref['guests']} guests <= {CPU_FLAT_GOAL}", f"{cpu:.2f}",
         yes[out["cpu_flat_ok"]]],
    ])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench", description=__doc__)
    quick_help = f"matrix on {' and '.join(QUICK_ROLES)} only; scaling to {QUICK_SCALE_SIZES[-1]} guests"
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--accuracy", action="store_true",
                        help="false alarms over loaded matrices, planted leaks caught, the late-outage bound "
                             "(bench/accuracy.py) instead of the speed figures")
    parser.add_argument("--runs", type=int, default=10, help="with --accuracy: runs of each (default 10)")
    args = parser.parse_args(argv)
    if args.accuracy:
        from bench.accuracy import main as accuracy

        if not 1 <= args.runs <= 1000:
            parser.error(f"--runs {args.runs}: use 1 to 1000")
        return accuracy(args.runs)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    print(f"bench{' --quick' if args.quick else ''}: {machine['cpus']} CPUs, Python {machine['python']}, "
          f"{machine['platform']}")
    cache: dict[Key, CaseResult] = {}
    started = time.monotonic()
    mat = bench_matrix(args.quick, cache)
    stall = bench_stall()
    restart = bench_restart(cache)
    scaling = bench_scaling(args.quick)
    met = goals(mat, stall, scaling)
    report = {"quick": args.quick, "machine": machine, "matrix": mat, "stall": stall, "restart": restart,
              "scaling": scaling, "goals": met, "bench_wall_s": time.monotonic() - started}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {OUT} ({report['bench_wall_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
