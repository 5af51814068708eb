"""Helpers for the harness's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
from junitparser.xunit2 import TestCase

from harness.backend.sim import MARKER

REPO = Path(__file__).resolve().parents[1]
CADENCE = 0.01
# the scenarios of `pytest suites` on sim://: kill, stall, throttle, crash-loop and memory-pressure on
# each of the 6 roles; partition (netback), disk-error (blkback) and xenstore-storm (xenstore)
MATRIX = 6 * 5 + 3
ISOLATION = 3  # suites/test_isolation.py: one case per role an attacker owns
QOS = 4  # suites/test_qos.py: disk and net floods, each on disaggregated and per-tenant
SCALE = 2  # suites/test_scale.py: disaggregated and two-netdds
CLAIMS = ISOLATION + QOS + SCALE  # the cases beside the fault matrix
CLAIM_PICTURES = 2  # the report's latency CDFs and guests-per-host curves


def sim_processes() -> list[psutil.Process]:
    """Every live process of any sim:// host on this machine."""
    found = []
    for proc in psutil.process_iter():
        try:
            if MARKER in proc.environ() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root, as a user would (``windsor`` is the one installed
    beside this Python, whether or not its bin directory is on PATH)."""
    argv = list(args)
    if argv[0] == "windsor":
        argv[0] = str(Path(sys.executable).parent / "windsor")
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def pytest_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]


def fault_cases(junit: Path) -> list[TestCase]:
    """The resilience matrix's testcases of a JUnit file (not the isolation cases beside them)."""
    from harness.junit import read_cases

    return [c for c in read_cases(str(junit)) if str(c.name).startswith("test_fault_contained")]
