"""Reusing a booted topology between cases, behind a gate.

Booting a topology is most of a short case's time (≈ 0.2 s on sim://; ≈ 30 s under TCG on the lab,
every domain created again). After a case, its host is kept booted if the case left it clean:
- the case ran to its end (no exception, no interrupt), its fault reverted, its role answering again;
- the host did not reboot (a host crash re-creates everything: the next case boots afresh);
- every guest device was progressing again, no impact escaped the blast radius, nothing outside
  it was restarted, no acknowledged write was lost.

The next case takes it only for the same host URL, topology, guests, cadence and seed, and only if
the host itself says it can serve another case (`Host.reusable`: no lease held, the planned
domains all there, no reboot since). The case then waits for its steady state as a fresh one
does; if that fails, the kept host is shut down and the case boots a fresh one. So a case never
starts on a host that the one before it damaged: tests/test_reuse.py proves it.

One host is kept at a time (a new key shuts the kept one down first: two lab topologies, or two
busy sim hosts, would disturb each other's figures); `close` shuts it down at the end of the
session (the plugin), and at exit.
"""

from __future__ import annotations

import atexit
import logging
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.backend import get_host
from harness.backend.base import Host
from harness.errors import HarnessError, NotSteady
from harness.model import GuestSpec, pairs
from harness.signals import critical

if TYPE_CHECKING:
    from harness.scenario import RunOptions
    from harness.topology import Topology

log = logging.getLogger("windsor")


@dataclass
class _Kept:
    host: Host
    key: Hashable


_kept: list[_Kept] = []


def take(url: str, key: Hashable, allowed: bool) -> tuple[Host, bool]:
    """A host for a case: the kept one, booted, if it matches `key` and passes its gate (True), or
    a new, unbooted one (False); any other kept host is shut down first."""
    kept = _kept.pop() if _kept else None
    if kept is not None:
        if allowed and kept.key == key:
            try:
                why = kept.host.reusable()
            except (HarnessError, OSError) as exc:
                why = f"could not check it: {exc}"
            if why is None:
                log.info("reusing the booted topology on %s", url)
                return kept.host, True
            log.info("booting afresh on %s: the kept topology cannot serve another case (%s)", url, why)
        discard(kept.host)
    return get_host(url), False


def give_back(host: Host, key: Hashable, clean: bool, allowed: bool) -> None:
    """The case is over: keep its host booted for the next case if it is clean, else shut it down."""
    if clean and allowed:
        _kept.append(_Kept(host, key))
    else:
        discard(host)


def discard(host: Host) -> None:
    """Shut the host down, whole: an interrupt that comes meanwhile (CI cancelling a second time)
    is held until the topology is down (every command of a shutdown has its deadline)."""
    try:
        with critical():
            host.shutdown()
    except (HarnessError, OSError) as exc:
        log.warning("%s: could not shut the host down: %s", host.spec.url, exc)


def close() -> None:
    """Shut the kept host down (the end of a session); harmless when none is kept."""
    while _kept:
        discard(_kept.pop().host)


atexit.register(close)


@contextmanager
def booted(opts: RunOptions, topology: Topology, guests: Sequence[GuestSpec], roles: tuple[str, ...] = (),
           cadence_s: float | None = None) -> Iterator[tuple[Host, tuple[GuestSpec, ...]]]:
    """The run's host with `topology` booted (or kept from the case before: same host, topology,
    budget, guests, cadence, seed) and every guest device progressing, and the guests as the host
    runs them (`Host.adapt` for `roles`), at `cadence_s` (default: the run's). The host is kept for
    the next case only if the block ends without an exception: a case that measures without
    changing anything leaves it clean."""
    from harness.runner import steady

    cadence_s = cadence_s or opts.cadence_s
    key = (opts.host, topology, tuple(guests), cadence_s, opts.seed)
    host, reused = take(opts.host, key, opts.reuse)
    clean = False
    try:
        adapted = host.adapt(guests, roles)
        if not reused:
            log.info("booting %s on %s with %d guests", topology.name, opts.host, len(adapted))
            host.boot(topology, adapted, cadence_s, opts.seed)
        if not steady(host, pairs(adapted), host.steady_timeout_s):
            raise NotSteady(f"no steady state within {host.steady_timeout_s:.0f}s on {topology.name}")
        yield host, adapted
        clean = True
    finally:
        give_back(host, key, clean, opts.reuse)
