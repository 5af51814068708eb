"""A domain's CPU on sim:// (the model behind the QoS and scalability suites: docs/design.md).

Every request a backend takes off a ring (harness/sim/xenbus.py's `Backend`) costs the domain
serving it `OP_COST_S` of one CPU. A domain has one vCPU, and its budget is the topology's
``cpu_pct`` (the same for dom0 and every service domain): a request then holds the domain's vCPU
for ``OP_COST_S * 100 / cpu_pct`` of wall time, one request at a time for the whole domain. dom0's
processes (xenstored, xenconsoled, QEMUs) share dom0's vCPU through a lock file. When more
requests arrive than the budget serves, they queue, as they do behind a busy or capped vCPU on Xen.

The time held is added up in ``RUN_DIR/cpu/DOMAIN`` (seconds, as text), which the harness reads as
the domain's CPU use (`harness.backend.sim.SimHost.cpu_busy`). The cost is modelled, not burnt: it
does not depend on the machine running the host, so the figures compare topologies, not machines.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from harness.sim import paths

OP_COST_S = 20e-6  # one backend request at a full CPU (20 µs: ≈ 2 % of dom0 for sim's 6 guests)
WIDTH = 32


class DomainCpu:
    def __init__(self, path: str, cpu_pct: int) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.cost = OP_COST_S * 100 / max(1, min(100, cpu_pct))
        self.lock = threading.Lock()  # a process's threads (flock is per open file, not per thread)

    def spend(self) -> None:
        """Hold the domain's vCPU for one request's cost."""
        with self.lock:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            try:
                start = time.monotonic()
                end = start + self.cost
                while (left := end - time.monotonic()) > 0:
                    time.sleep(left)  # allow-sleep: the request's work, modelled: the vCPU is held, not burnt
                busy = float(os.pread(self.fd, WIDTH, 0).strip() or 0) + time.monotonic() - start
                os.pwrite(self.fd, f"{busy:.6f}".ljust(WIDTH - 1).encode() + b"\n", 0)
            finally:
                fcntl.flock(self.fd, fcntl.LOCK_UN)


_cpu: list[DomainCpu] = []


def use(run_dir: str, domain: str, cpu_pct: int) -> None:
    """This process runs on `domain`'s vCPU (once, at its start)."""
    _cpu[:] = [DomainCpu(paths.cpu(run_dir, domain), cpu_pct)]


def spend() -> None:
    """One request's cost to this process's domain (nothing in a process that is not a domain's)."""
    for cpu in _cpu:
        cpu.spend()


def busy(run_dir: str) -> dict[str, float]:
    """Every domain's vCPU time so far, in seconds."""
    out: dict[str, float] = {}
    try:
        names = os.listdir(paths.cpu(run_dir))
    except FileNotFoundError:
        return out
    for name in names:
        try:
            with open(paths.cpu(run_dir, name), "rb") as fh:
                out[name] = float(fh.read(WIDTH).strip() or 0)
        except (OSError, ValueError):
            continue
    return out
