"""How far the verdicts can be trusted, as figures: ``windsor bench --accuracy [--runs N]``.

1. False alarms: the whole matrix (with baselines, as users run it) N times on sim:// with a CPU
   hog on one core and a writer on the machine's disk (1 GB, fsynced, over and over) beside it;
   every case that fails because an impact escaped its blast radius or something outside it
   restarted is a false alarm (nothing is planted, so none is real).
2. Misses: each leak planted in the host (harness/sim/leaks.py) N times on the case it shows in;
   each run must fail, with the message that names the leak.
3. The late-outage bound: a bystander guest stopped 1–2 s after the fault, for shorter and shorter
   times; the smallest stop caught in every run is the blind spot's measured edge.

Every run is a real ``pytest suites`` in a subprocess. Writes ``out/accuracy.json``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from junitparser import Error, Failure
from junitparser.xunit2 import JUnitXml

from harness.metrics import LATE_FACTOR
from harness.sim.leaks import LATE_STALL_ENV

OUT = Path("out") / "accuracy.json"
FALSE_ALARM = re.compile(r"impact escaped the blast radius|restarted outside the blast radius")
LEAK_CASES = (  # leak, the case it shows in, what the failure must say
    ("hidden-dependency", "netback-stall", "escaped the blast radius of netdd: g01:disk"),
    ("late-stall", "netback-kill", "escaped the blast radius of netdd: g03:console"),
    ("lost-write", "blkback-kill", "1 acknowledged write lost"),
    ("hollow-service", "netback-kill", "but impacted guest devices never progressed again"),
    ("open-xenstore", "compromised_service_contained and netback", "reachable from netdd: another guest's own node"),
)
LATE_STALLS_S = (0.1, 0.15, 0.2, 0.25, 0.3, 0.5)
HOG = "import os\nos.sched_setaffinity(0, {0})\nwhile True:\n    pass\n"
DISK_WRITER = "while :; do dd if=/dev/zero of={file} bs=1M count=1000 conv=fsync status=none; done"


def pytest_suites(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False,
                          env={**os.environ, **(env or {})})


def failures(junit: Path) -> tuple[int, list[tuple[str, str]]]:
    """How many testcases a JUnit file has, and the failed or errored ones with their messages."""
    total, out = 0, []
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            total += 1
            for result in case.result:
                if isinstance(result, (Failure, Error)):
                    out.append((str(case.name), str(result.message or "")))
    return total, out


def false_alarms(runs: int, work: Path) -> dict[str, Any]:
    hog = subprocess.Popen([sys.executable, "-c", HOG])
    writer = subprocess.Popen(["sh", "-c", DISK_WRITER.format(file=work / "big")], start_new_session=True)
    rows: list[dict[str, Any]] = []
    try:
        for i in range(runs):
            junit = work / f"matrix-{i}.xml"
            start = time.monotonic()
            pytest_suites(["--junitxml", str(junit)])
            cases, failed = failures(junit)
            alarms = [(name, msg) for name, msg in failed if FALSE_ALARM.search(msg)]
            rows.append({"run": i + 1, "wall_s": time.monotonic() - start, "cases": cases, "failed": failed,
                         "false_alarms": alarms})
            print(f"  matrix {i + 1}/{runs}: {len(failed)} failed, {len(alarms)} false alarms "
                  f"({rows[-1]['wall_s']:.0f} s)" + "".join(f"\n    {n}: {m[:200]}" for n, m in failed), flush=True)
    finally:
        hog.kill()
        hog.wait()
        subprocess.run(["pkill", "-KILL", "-s", str(writer.pid)], check=False)
        writer.wait()
        (work / "big").unlink(missing_ok=True)
    return {"runs": rows, "false_alarms": sum(len(r["false_alarms"]) for r in rows),
            "other_failures": sum(len(r["failed"]) - len(r["false_alarms"]) for r in rows),
            "cases": sum(r["cases"] for r in rows)}


def misses(runs: int, work: Path) -> dict[str, Any]:
    out = {}
    for leak, case, says in LEAK_CASES:
        caught = 0
        for i in range(runs):
            done = pytest_suites(["--no-baseline", "-k", case, "--recovery-budget", "2",
                                  "--host", f"sim://?leak={leak}&dir={work / 'root'}"])
            named = done.returncode == 1 and says in done.stdout
            caught += named
            if not named:
                print(f"  {leak} run {i + 1}: MISSED (exit {done.returncode})\n{done.stdout[-1500:]}", flush=True)
        out[leak] = {"case": case, "runs": runs, "caught": caught}
        print(f"  {leak:18s} on {case:14s}: caught {caught}/{runs}", flush=True)
    return out


def late_bound(runs: int, work: Path) -> dict[str, Any]:
    rows = {}
    for stall in LATE_STALLS_S:
        caught = 0
        for _ in range(runs):
            done = pytest_suites(["--no-baseline", "-k", "netback-kill", "--host",
                                  f"sim://?leak=late-stall&dir={work / 'root'}"], {LATE_STALL_ENV: f"{stall:g}"})
            caught += done.returncode == 1 and "escaped the blast radius" in done.stdout
        rows[f"{stall:g}"] = caught
        print(f"  bystander stopped {stall:g} s, 1-2 s after the fault: caught {caught}/{runs}", flush=True)
    always = [float(s) for s, c in rows.items() if c == runs]
    return {"runs": runs, "caught_by_stall_s": rows, "smallest_always_caught_s": min(always) if always else None,
            "rule_s": LATE_FACTOR * 0.05}


def main(runs: int) -> int:
    work = Path("out") / "accuracy"
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"bench --accuracy: {runs} runs each; {os.cpu_count()} CPUs")
    print(f"\n== 1. false alarms: the matrix {runs} times, a CPU hog on core 0 and a disk writer ==", flush=True)
    fa = false_alarms(runs, work)
    print(f"\n== 2. misses: planted leaks, {runs} runs each ==", flush=True)
    mi = misses(runs, work)
    print(f"\n== 3. late outages: the smallest caught every time ({runs} runs each) ==", flush=True)
    lb = late_bound(runs, work)
    ok = fa["false_alarms"] == 0 and all(m["caught"] == m["runs"] for m in mi.values())
    print("\n== goals ==")
    print(f"  false alarms over {fa['cases']} loaded cases: {fa['false_alarms']} (goal 0)"
          f"; other failures: {fa['other_failures']}")
    for leak, m in mi.items():
        print(f"  {leak}: caught {m['caught']}/{m['runs']} (goal {m['runs']}/{m['runs']})")
    print(f"  smallest late outage caught {runs}/{runs}: {lb['smallest_always_caught_s']} s "
          f"(rule: {LATE_FACTOR:g} x the 50 ms threshold = {lb['rule_s']:g} s of downtime)")
    report = {"runs": runs, "false_alarms": fa, "misses": mi, "late": lb, "goals_met": ok,
              "wall_s": time.monotonic() - started}
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {OUT} ({report['wall_s']:.0f} s in all); goals {'met' if ok else 'NOT met'}")
    return 0 if ok else 1
