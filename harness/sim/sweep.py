"""Finding and ending a sim:// host's processes: each carries the host's run dir in its
environment (`MARKER`), whatever became of the process that started it."""

from __future__ import annotations

import os

import psutil

from harness.waiting import wait_until

MARKER = "WINDSOR_SIM_HOST"


def dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie nobody has reaped yet (it runs no more)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def processes(run_dir: str) -> list[psutil.Process]:
    """Every live process of the sim host in `run_dir` (but the caller)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(MARKER) == run_dir:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def sweep(run_dir: str) -> int:
    """Kill every process that belongs to the sim host in `run_dir`; return how many."""
    found = processes(run_dir)
    for proc in found:
        try:
            proc.kill()
        except psutil.Error:
            pass
    wait_until(f"{len(found)} leftover processes to die", lambda: all(map(dead, found)), 5.0, quiet=True)
    return len(found)
