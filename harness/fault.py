"""Faults are plugins: a `Fault` subclass registered in the entry-point group ``harness.faults``.

A fault's life (chaostoolkit's shape): parameters are parsed and validated before anything is
touched (`parse_params`); `inject()` applies it; `hold()` keeps it for its window; `revert()`
undoes it — always called, in ``finally``, and harmless when called twice or after a failed
inject. `blast()` says which roles the fault takes down in a given topology and whether it
crashes the host: the suites compare the measured impact against it.

Every fault carries a `Lease` (harness/lease.py): its window plus the host's margin. A fault
that changes the host's state does so only through host primitives that take the lease
(`Host.pause`), so the host undoes it by itself when the lease ends, even if the harness died.
`inject()` and `revert()` run with interrupting signals held back (harness/signals.py): Ctrl-C,
SIGTERM or a pytest-timeout cannot land between a change and the harness knowing of it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from harness.backend.base import Host, Target
from harness.errors import UsageError
from harness.lease import Lease
from harness.model import ROLE_DEVICE, GuestSpec, Pair
from harness.signals import critical
from harness.topology import Topology

log = logging.getLogger("windsor")


@dataclass(frozen=True)
class Blast:
    """What a fault takes down: these roles (for a device model alone: one guest's), or the host."""

    roles: frozenset[str]
    host_crash: bool = False
    guest: str | None = None

    def expected(self, guests: tuple[GuestSpec, ...]) -> frozenset[Pair]:
        """The (guest, device) pairs that may notice."""
        if self.host_crash:
            return frozenset((g.name, d) for g in guests for d in g.devices)
        out = set()
        for role in self.roles:
            device = ROLE_DEVICE.get(role)
            for g in guests:
                if device in g.devices and (role != "device-model" or self.guest in (None, g.name)):
                    out.add((g.name, device))
        return frozenset(out)


@dataclass(frozen=True)
class NoParams:
    pass


class Fault(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[Any]] = NoParams
    crashes_dom0: ClassVar[bool] = False  # does hitting a kernel role in dom0 crash the host?
    replaces_target: ClassVar[bool] = False  # is the service back only as a new incarnation?
    destructive: ClassVar[bool] = True  # runs only on test hosts (or with --allow-destructive)

    def __init__(self, host: Host, target: Target, params: Any) -> None:
        self.host, self.target, self.params = host, target, params
        self.lease = Lease.new(self.name, target.entity, self.window_s, host.lease_margin_s)
        self.injected_at: float | None = None
        self.reverted_at: float | None = None

    @classmethod
    def reversible(cls) -> bool:
        """Does the fault leave a change behind that `revert` (or its lease's end) undoes?"""
        return cls._revert is not Fault._revert

    @classmethod
    def parse_params(cls, raw: Mapping[str, str]) -> Any:
        """Typed, validated parameters from ``key=value`` strings; UsageError on anything wrong."""
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        values: dict[str, Any] = {}
        for key, text in raw.items():
            if key not in fields:
                known = ", ".join(fields) or "none"
                raise UsageError(f"fault {cls.name!r} has no parameter {key!r} (parameters: {known})")
            kind = fields[key].type
            try:
                values[key] = float(text) if kind in (float, "float") else int(text) if kind in (int, "int") else text
            except ValueError:
                raise UsageError(f"fault {cls.name!r}: {key}={text!r} is not a {kind}") from None
        try:
            return cls.Params(**values)
        except UsageError as exc:
            raise UsageError(f"fault {cls.name!r}: {exc}") from None

    @classmethod
    def blast(cls, topology: Topology, role: str, guest: str | None = None) -> Blast:
        domain = topology.domain_of(role, guest)
        if topology.in_dom0_kernel(role):
            return Blast(topology.roles_in("dom0"), host_crash=cls.crashes_dom0)
        if domain == "dom0":
            return Blast(frozenset({role}), guest=guest)
        return Blast(topology.roles_in(domain), guest=guest)

    @property
    def window_s(self) -> float:
        """How long the fault holds before it is reverted (0: it is instantaneous)."""
        return 0.0

    def inject(self) -> None:
        with critical():
            started = self.host.now()
            try:
                hit = self._inject()
            finally:
                self.injected_at = started  # from here on, revert() must run
            self.injected_at = hit
        log.info("injected %s on %s (%s) at host time %.3f%s", self.name, self.target.entity, self.target.role, hit,
                 f"; the host ends it by itself after {self.lease.total_s:g}s (lease {self.lease.id})"
                 if self.reversible() else "")

    def hold(self) -> None:
        if self.injected_at is not None and self.window_s > 0:
            end = self.injected_at + self.window_s
            while (left := end - self.host.now()) > 0:
                time.sleep(min(left, 0.05))  # allow-sleep: this is the fault window itself

    def revert(self) -> None:
        if self.injected_at is None or self.reverted_at is not None:
            return
        with critical():
            self.reverted_at = self._revert() or self.host.now()
        log.info("reverted %s on %s after %.3fs", self.name, self.target.entity,
                 self.reverted_at - self.injected_at)

    @abstractmethod
    def _inject(self) -> float:
        """Apply the fault; return the host time it took effect (what `Host.kill` etc. return).
        Any change that must be undone goes through a host primitive that takes `self.lease`."""

    def _revert(self) -> float | None:
        """Undo `_inject`; return the host time it was undone. The default is for faults that
        leave nothing to undo."""
        return None


def describe_params(params: Any) -> str:
    """Parameters as they are in effect, defaults included: ``duration_s=1,cap_pct=10`` ("": none)."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in dataclasses.asdict(params).items())


def installed_faults() -> dict[str, type[Fault]]:
    found: dict[str, type[Fault]] = {}
    for ep in entry_points(group="harness.faults"):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Fault)) or cls.name != ep.name:
            raise UsageError(f"entry point {ep.name!r} ({ep.value}) is not a Fault named {ep.name!r}")
        found[ep.name] = cls
    return dict(sorted(found.items()))


def get_fault(name: str) -> type[Fault]:
    faults = installed_faults()
    if name not in faults:
        known = ", ".join(faults) or "none (pip install -e . registers kill and stall)"
        raise UsageError(f"unknown fault {name!r}: installed faults are {known}")
    return faults[name]
