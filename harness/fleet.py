"""Which host a session runs on: ``--host URL``, or ``--host inventory:FILE`` — a free host of an
inventory — and taking it: preflight, then the host lease (harness/hostlease.py), waiting for a
free host up to ``--host-wait`` seconds with a progress line every `PROGRESS_S`.

An inventory's hosts are tried in the file's order, starting at the shard's own position (shard I
of N starts at host I, wrapping around): while every host is free, shard I runs on host I every
night, so the report's history compares a case with itself on the same host. Its hosts must be
of one kind (Xen, or sim://): the run's defaults come from the kind. A Xen host taken from an
inventory is run as ``URL?inventory=FILE``: its test_host, dom0_faults and roles apply exactly as
when that URL is given by hand.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_exponential

from harness.backend import Host, get_host, host_class
from harness.errors import HostError, UsageError
from harness.hostlease import HostLease, HostLeased
from harness.xen.inventory import load_inventory

PREFIX = "inventory:"
PROGRESS_S = 10.0  # how often a waiting run says so
MAX_WAIT_S = 86400.0
Say = Callable[[str], None]


def parse_wait(text: str) -> float:
    """``--host-wait SECONDS``: 0 (fail at once, naming the holder) to a day."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_WAIT_S):
        raise UsageError(f"--host-wait {text!r} is out of range (0 to {MAX_WAIT_S:g} s)")
    return value


@dataclass(frozen=True)
class HostPool:
    """The hosts a run may take, in the order it tries them."""

    given: str  # --host as given
    urls: tuple[str, ...]
    inventory: str | None = None  # the file, for --host inventory:FILE

    @classmethod
    def parse(cls, given: str) -> HostPool:
        """UsageError (nothing touched) for a missing, malformed or mixed inventory."""
        if not given.startswith(PREFIX):
            return cls(given, (given,))
        path = given[len(PREFIX):]
        if not path:
            raise UsageError("--host inventory: needs a file: --host inventory:ci/hosts.toml")
        urls = tuple(url_for(entry.url, path) for entry in load_inventory(path).hosts)
        kinds = {host_class(url).__name__: url for url in urls}
        if len(kinds) > 1:
            raise UsageError(f"inventory {path!r} mixes kinds of host ({', '.join(kinds.values())}): "
                             "one inventory per kind, since the run's defaults come from the kind")
        return cls(given, urls, path)

    def rotated(self, first: int) -> tuple[str, ...]:
        """The hosts, starting at index `first` (wrapping around)."""
        n = first % len(self.urls)
        return self.urls[n:] + self.urls[:n]

    def only(self, urls: tuple[str, ...]) -> HostPool:
        return HostPool(self.given, urls, self.inventory)


def url_for(url: str, inventory: str) -> str:
    """A Xen host's URL with its inventory named (``?inventory=FILE``); a sim:// URL as it is."""
    if not url.startswith("xen+"):
        return url
    return f"{url}{'&' if '?' in url else '?'}inventory={urllib.parse.quote(inventory, safe='/~.-_+')}"


def allowed(pool: HostPool, check: Callable[[str], None], note: Say) -> HostPool:
    """The hosts of `pool` that `check` (the interlocks over the whole matrix) lets through. One
    host: its refusal. An inventory: the others are left out, with a note; a refusal if none is left."""
    keep, refused = [], []
    for url in pool.urls:
        try:
            check(url)
            keep.append(url)
        except UsageError as exc:
            if pool.inventory is None:
                raise
            refused.append(f"{url}: {exc}")
    if not keep:
        raise UsageError(f"no host of {pool.given} may run this matrix: {refused[0]}")
    for why in refused:
        note(f"left out {why}")
    return pool.only(tuple(keep))


@dataclass
class _Try:
    """One candidate host: asked once whether it answers, then for its lease on every round."""

    url: str
    host: Host | None = None
    down: str = ""  # why it cannot be used (it does not answer)
    holder: HostLease | None = None  # who held it last time we asked


def take(pool: HostPool, wait_s: float, first: int, say: Say) -> Host:
    """The first host of `pool` (from index `first`) that answers and whose lease this run gets.
    Waits up to `wait_s` for one; then HostError naming every holder and until when (and why any
    other host could not be used). For a single host, its own preflight error as it is."""
    tries = [_Try(url) for url in pool.rotated(first)]
    started = last_said = time.monotonic()

    def attempt() -> Host | None:
        nonlocal last_said
        for t in tries:
            if t.down:
                continue
            try:
                if t.host is None:
                    host = get_host(t.url)
                    for line in host.preflight():
                        say(f"{t.url}: {line}")
                    t.host = host
                for line in t.host.claim(HostLease.new(t.url)):
                    say(f"{t.url}: {line}")
                return t.host
            except HostLeased as exc:
                t.holder = exc.lease
            except HostError as exc:
                if len(tries) == 1:
                    raise
                t.down = str(exc)
                say(f"{t.url} cannot be used: {t.down}")
        if all(t.down for t in tries):
            raise HostError(f"no host of {pool.given} can be used: " + "; ".join(t.down for t in tries))
        if time.monotonic() - last_said >= PROGRESS_S:
            last_said = time.monotonic()
            say(f"waiting for a free host ({last_said - started:.0f}s of {wait_s:.0f}s): {_holders(tries)}")
        return None

    if wait_s > 0:
        say(f"taking a host from {pool.given}, waiting up to {wait_s:.0f}s for a free one")
    retrying = Retrying(stop=stop_after_delay(wait_s), wait=wait_exponential(multiplier=0.2, max=2.0),
                        retry=retry_if_result(lambda got: got is None))
    try:
        got = retrying(attempt)
    except RetryError:
        got = None
    if got is not None:
        return got
    waited = f"waited {wait_s:.0f}s; --host-wait SECONDS to wait longer" if wait_s else \
        "--host-wait SECONDS to wait for it"
    every = f"every host of {pool.given} is taken: " if len(tries) > 1 else ""
    raise HostError(f"{every}{_holders(tries)} ({waited})")


def _holders(tries: list[_Try]) -> str:
    held = [t.holder.describe() for t in tries if t.holder is not None and not t.down]
    down = [f"{t.url} cannot be used ({t.down})" for t in tries if t.down]
    return "; ".join(held + down)
