"""The host lease: one run at a time on a host, whatever machine or CI system started it.

Before a session runs anything, it writes an exclusive lease on the host (`Host.claim`): who holds
it (`harness.lease.Owner`: machine, pid, process start; and the machine's name, for people), the
CI job (``$CI_JOB_URL``, else Jenkins' ``$BUILD_URL``, else ``local``), since when and until when.
It renews the lease as it goes (at a test's start, once a minute at most: expiry = now + `TTL_S`)
and releases it at its end (`Host.release`; Ctrl-C, SIGTERM and failures included). A run that is
SIGKILLed leaves its lease behind; it is taken over, with one line said, once it has expired or when
its owner ran on this machine and is gone. A record that cannot be read is taken over too. A
session with no scenario to run (the harness's own tests) lets its host go once it has collected
them; a run started from within the holder's own run shares its lease: it neither takes nor
releases it.

This is separate from the per-fault leases of harness/lease.py (a dead-man's switch for one
fault's change): it keeps two runs from booting topologies on one host at once. Every host keeps
its record as text and swaps it atomically (`Host.swap_lease`: compare-and-swap); the policy —
what is stale, what is ours, what is said — is here, once.

The record, as stored (``key=value`` lines; times in UTC, to the second)::

    windsor-host-lease 1
    host=xen+ssh://root@xen-runner-1?inventory=ci/hosts.toml
    owner=3f0c...e1:4242:1795804217.99
    machine=ci-runner-3
    job=https://gitlab.example.com/xen/windsor/-/jobs/1234
    since=2026-11-27T02:00:05Z
    expires=2026-11-27T02:30:05Z
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import psutil

from harness.errors import HostError
from harness.lease import Owner

TTL_S = 1800.0  # a lease not renewed for this long (its run SIGKILLed, or cut off) may be taken over
RENEW_AFTER_S = 60.0  # renewing more often than this buys nothing (one ssh command each on Xen)
MAGIC = "windsor-host-lease 1"
KEYS = ("host", "owner", "machine", "job", "since", "expires")
UNSAFE = re.compile(r"[\x00-\x1f\x7f]")

Swap = Callable[[str, str], str]  # (expected text, new text) -> the text found; "" = no lease


def ci_job() -> str:
    """The CI job this run belongs to: GitLab's job URL, else Jenkins' build URL, else "local"."""
    return clean(os.environ.get("CI_JOB_URL") or os.environ.get("BUILD_URL") or "local")


def clean(value: str) -> str:
    """One line of at most 300 characters: a record value never breaks the record."""
    return UNSAFE.sub("?", value.strip())[:300] or "?"


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def unstamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class HostLease:
    host: str  # the host's URL, as the run named it
    owner: Owner
    machine: str  # the owner's machine name, for people (the owner has its machine id)
    job: str  # CI job URL, or "local"
    since: float  # unix time, whole seconds
    expires: float

    @classmethod
    def new(cls, host: str, ttl_s: float = TTL_S, now: float | None = None) -> HostLease:
        t = float(int(time.time() if now is None else now))
        return cls(clean(host), Owner.me(), clean(socket.gethostname()), ci_job(), t, t + ttl_s)

    def renewed(self, ttl_s: float = TTL_S, now: float | None = None) -> HostLease:
        return replace(self, expires=float(int(time.time() if now is None else now)) + ttl_s)

    def due(self, now: float | None = None) -> bool:
        """Is a renewal worth a round trip now?"""
        return self.expires - (time.time() if now is None else now) < TTL_S - RENEW_AFTER_S

    def text(self) -> str:
        values = (self.host, self.owner.word(), self.machine, self.job, stamp(self.since), stamp(self.expires))
        return "\n".join([MAGIC, *(f"{k}={v}" for k, v in zip(KEYS, values, strict=True))])

    @classmethod
    def parse(cls, text: str) -> HostLease:
        """ValueError unless `text` is a whole record."""
        lines = text.strip().splitlines()
        if not lines or lines[0] != MAGIC:
            raise ValueError("not a windsor host lease")
        fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
        if set(fields) != set(KEYS):
            raise ValueError(f"keys {sorted(fields)}, want {sorted(KEYS)}")
        return cls(fields["host"], Owner.parse(fields["owner"]), fields["machine"], fields["job"],
                   unstamp(fields["since"]), unstamp(fields["expires"]))

    def stale(self, now: float | None = None) -> str | None:
        """Why this lease may be taken over (None: it holds)."""
        t = time.time() if now is None else now
        if self.expires <= t:
            return f"it expired at {stamp(self.expires)}"
        if self.owner.alive() is False:
            return "its run is gone"
        return None

    def holder(self) -> str:
        return f"pid {self.owner.pid} on {self.machine}"

    def describe(self) -> str:
        return f"{self.host} is leased by {self.holder()} ({self.job}) until {stamp(self.expires)}"


class HostLeased(HostError):
    """Another live run holds the host."""

    def __init__(self, lease: HostLease) -> None:
        super().__init__(lease.describe())
        self.lease = lease


def ancestor(owner: Owner) -> bool:
    """Is `owner` this process's parent, or its parent's parent, ...?"""
    if owner.alive() is not True:
        return False
    try:
        return any(p.pid == owner.pid for p in psutil.Process().parents())
    except psutil.Error:
        return False


def claim(swap: Swap, lease: HostLease, held: HostLease | None) -> tuple[HostLease | None, list[str]]:
    """Write `lease` as the host's lease: where there is none, where `held` (ours) is, or over a
    stale one. Returns the lease this run now holds (None: it shares an ancestor's) and what was
    done, one line each. HostLeased when another live run holds the host; HostError when `held`
    was taken from us."""
    expected = held.text() if held is not None else ""
    said: list[str] = []
    for _ in range(5):  # the record changed between our read and our swap: read it again
        found = swap(expected, lease.text())
        if found == expected:
            return lease, said
        if held is not None:
            raise HostError(f"{lease.host}: this run's host lease was taken over: {_shown(found)}")
        try:
            holder: HostLease | None = HostLease.parse(found)
        except ValueError:
            holder = None
        if holder is not None and ancestor(holder.owner):
            return None, said
        why = "its record is damaged" if holder is None else holder.stale()
        if holder is not None and why is None:
            raise HostLeased(holder)
        said.append(f"took over the host lease of {holder.holder() if holder else 'an unknown run'} "
                    f"({holder.job if holder else _shown(found)}): {why}")
        expected = found
    raise HostError(f"{lease.host}: its host lease record keeps changing under us: {_shown(expected)}")


def release(swap: Swap, lease: HostLease) -> str | None:
    """Remove our lease (harmless if it is gone); a line to say if another run had taken it over."""
    found = swap(lease.text(), "")
    if found in (lease.text(), ""):
        return None
    return f"did not release the host lease: it was taken over ({_shown(found)})"


def _shown(text: str) -> str:
    try:
        return HostLease.parse(text).describe()
    except ValueError:
        return repr(text[:120])
