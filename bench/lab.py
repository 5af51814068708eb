"""Figures of the real-Xen lab on this machine: cold build, warm build, boot to dom0 ready, and
the duration of each lab case (netback/blkback × kill/stall, disaggregated + monolithic baseline),
with the real-Xen restart and recovery times beside sim://'s for the same scenarios.

Run from the repository root: ``python -m bench.lab [--cases netback-kill,...] [--cold] [--matrix]``.
``--cold`` builds into a fresh lab dir (downloads and debootstrap included). Prints tables and
writes ``out/bench-lab.json``. Needs root, QEMU and the lab's packages (harness/lab/build.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench import table
from harness.junit import case_props, read_cases
from harness.lab.build import build
from harness.lab.machine import DEFAULT_DIR, Lab

OUT = Path("out") / "bench-lab.json"
CASES = ("netback-kill", "netback-stall", "blkback-kill", "blkback-stall")
MATRIX = ("netback,blkback", "kill,stall,throttle")
GOAL_BUILD_BOOT_S = 180.0
GOAL_KILL_CASE_S, GOAL_KILL_HALF_S, GOAL_KILL_RECOVERY_S = 150.0, 60.0, 20.0  # a kill case with its baseline
GOAL_STALL_CASE_S, GOAL_MATRIX_S = 90.0, 900.0
METRICS = ("case_wall_s", "topology_reused", "guests_impacted", "service_restart_s", "guest_recovery_s",
           "max_guest_downtime_s", "host_survived")


def timed_build(root: Path) -> float:
    started = time.monotonic()
    build(root)
    return time.monotonic() - started


def pytest_suites(host: str, roles: str, faults: str, junit: Path) -> float:
    """`pytest suites` as a developer runs it, in a process of its own: its wall time."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "suites", "--host", host,
                    "--roles", roles, "--faults", faults, f"--junitxml={junit}"],
                   capture_output=True, text=True, timeout=3600)
    return time.monotonic() - started


def run_suite(host: str, case: str, junit: Path) -> tuple[float, dict[str, str]]:
    role, fault = case.split("-")
    wall = pytest_suites(host, role, fault, junit)
    [tc] = list(read_cases(str(junit)))
    props = case_props(tc)
    props["passed"] = str(tc.is_passed)
    return wall, props


def goals(results: dict[str, dict[str, Any]], matrix: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every goal of the lab, with its measured value (None: not measured in this run)."""
    def lab(fault: str, key: str) -> float | None:
        values = [float(r[key]) for k, r in results.items()
                  if k.endswith("lab://") and f"-{fault}" in k and r.get(key, "none") != "none"]
        return max(values) if values else None

    rows = [("kill case with its baseline (s)", lab("kill", "wall_s"), GOAL_KILL_CASE_S),
            ("  its disaggregated half (s)", lab("kill", "case_wall_s"), GOAL_KILL_HALF_S),
            ("  its guest recovery (s)", lab("kill", "guest_recovery_s"), GOAL_KILL_RECOVERY_S),
            ("stall case with its baseline (s)", lab("stall", "wall_s"), GOAL_STALL_CASE_S),
            (f"matrix {' x '.join(MATRIX)}, with baselines (s)", matrix["wall_s"] if matrix else None, GOAL_MATRIX_S)]
    out = [{"goal": name, "value": value, "at_most": goal, "met": value is not None and value <= goal}
           for name, value, goal in rows]
    table("goals (worst case of each kind; warm cache)", ["goal", "measured", "at most", "met"],
          [[r["goal"], "not measured" if r["value"] is None else f"{r['value']:.1f}", f"{r['at_most']:g}",
            "-" if r["value"] is None else ("yes" if r["met"] else "NO")] for r in out])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated ROLE-FAULT cases")
    parser.add_argument("--cold", action="store_true", help="also time a cold build in a fresh lab dir")
    parser.add_argument("--matrix", action="store_true",
                        help=f"also time the lab matrix ({' x '.join(MATRIX)}, with baselines) in one session")
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    figures: dict[str, Any] = {}
    if args.cold:
        fresh = Path(tempfile.mkdtemp(prefix="windsor-lab-cold-"))
        try:
            figures["cold_build_s"] = timed_build(fresh)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
    lab = Lab(DEFAULT_DIR)
    lab.down()
    figures["warm_build_s"] = timed_build(DEFAULT_DIR)
    state = lab.up()
    figures["boot_to_dom0_ready_s"] = state.ready_s
    rows: list[list[object]] = []
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            for host in ("lab://", "sim://"):
                wall, props = run_suite(host, case, Path(tmp) / f"{case}-{host[:3]}.xml")
                results[f"{case} {host}"] = {"wall_s": wall, **props}
                for side in ("", "baseline."):
                    rows.append([case, host, props.get(f"{side}topology", "-"), f"{wall:.0f}" if not side else "",
                                 props.get("passed") if not side else "",
                                 *(props.get(f"{side}{m}", "-") for m in METRICS)])
        matrix = None
        if args.matrix:
            junit = Path(tmp) / "matrix.xml"
            wall = pytest_suites("lab://", *MATRIX, junit)
            cases = list(read_cases(str(junit))) if junit.exists() else []
            matrix = {"wall_s": wall, "cases": len(cases), "passed": sum(tc.is_passed for tc in cases)}
            figures["matrix"] = matrix
    lab.down()
    figures["cases"] = results
    table("lab build and boot (s)", ["what", "seconds"],
          [[k, f"{v:.1f}"] for k, v in figures.items() if isinstance(v, float)])
    table("cases: real Xen (lab://) beside sim:// (case wall = both topologies)",
          ["case", "host", "topology", "wall", "passed", *METRICS], rows)
    if "cold_build_s" in figures:
        print(f"\ncold build + boot {figures['cold_build_s'] + state.ready_s:.0f} s (goal {GOAL_BUILD_BOOT_S:.0f})")
    if matrix:
        print(f"matrix: {matrix['passed']} of {matrix['cases']} cases passed in {matrix['wall_s']:.0f} s")
    figures["goals"] = goals(results, matrix)
    OUT.parent.mkdir(exist_ok=True)
    tmp_out = OUT.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(figures, indent=2))
    os.replace(tmp_out, OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
