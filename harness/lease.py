"""Leases: every fault that changes a host's state holds one, and the host undoes the change by
itself when it ends — even if the harness that took it is gone (a dead-man's switch).

A lease names who took it (`Owner`: machine, pid, process start time), what it covers and for how
long: the fault's window plus a margin for the harness's own revert to come first. The host
writes it to a journal before it touches anything, undoes it at the end of the lease unless the
harness did so first, and a later session reverts whatever a killed run left in that journal
(`Host.recover`). Undoing twice is harmless.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from functools import cache

import psutil


@cache
def machine_id() -> str:
    """This machine, as the journal names it (systemd's machine id, else the hostname)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path, encoding="ascii") as fh:
                found = fh.read().strip()
        except OSError:
            continue
        if found:
            return found
    return socket.gethostname()


@dataclass(frozen=True)
class Owner:
    """The process that took a lease."""

    machine: str
    pid: int
    started: float  # the process's start time (psutil create_time): tells a reused pid apart

    @classmethod
    def me(cls) -> Owner:
        return cls(machine_id(), os.getpid(), psutil.Process().create_time())

    def alive(self) -> bool | None:
        """Is the owner still running? None when it ran on another machine (we cannot tell)."""
        if self.machine != machine_id():
            return None
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 0.01
        except psutil.Error:
            return False

    def word(self) -> str:
        """One shell-safe word (machine:pid:start) for a journal on a remote host."""
        return f"{self.machine}:{self.pid}:{self.started:.2f}"

    @classmethod
    def parse(cls, word: str) -> Owner:
        machine, pid, started = word.rsplit(":", 2)
        return cls(machine, int(pid), float(started))

    def __str__(self) -> str:
        here = "" if self.machine == machine_id() else f" on machine {self.machine[:12]}"
        return f"pid {self.pid}{here}"


@dataclass(frozen=True)
class Lease:
    """What a host is asked to hold, and to undo by itself after `total_s`."""

    id: str
    fault: str
    target: str  # the entity (domain, or dom0/process)
    window_s: float  # how long the fault is meant to hold
    margin_s: float  # extra time for the harness's own revert to come first
    owner: Owner

    @classmethod
    def new(cls, fault: str, target: str, window_s: float, margin_s: float) -> Lease:
        return cls(f"w{uuid.uuid4().hex[:12]}", fault, target, window_s, margin_s, Owner.me())

    @property
    def total_s(self) -> float:
        return self.window_s + self.margin_s

    def describe(self) -> str:
        return f"{self.fault} of {self.target} (lease {self.id}, {self.total_s:g}s)"
