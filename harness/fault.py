"""Faults are plugins: a `Fault` subclass registered in the entry-point group ``harness.faults``.
This module is the public contract a fault package uses (README, "Writing a fault plugin"):
`Fault`, `Blast`, `Change`, `Lease`, `Target`, `Host`, `UsageError` and `wait_until`.

A fault's life (chaostoolkit's shape): parameters are parsed and validated before anything is
touched (`parse_params`); `inject()` applies it; `hold()` keeps it for its window (override it
for a fault that repeats: a crash loop, a flap); `revert()` undoes it — always called, in
``finally``, and harmless when called twice or after a failed inject. `blast()` says which
guests' devices the fault may take down in a given topology and whether it crashes the host: the
suites compare the measured impact against it.

What a fault declares, and the harness derives the matrix, `Host.cannot`, ``--dry-run`` and
``windsor faults`` from: `target_kind` (what it hits: a role, one guest's link, one guest's disk,
or a guest that acts against a role), `applies_to` (the roles; default: every role the target
kind allows), `needs` (the host capabilities it uses: harness/change.py's `KINDS`),
`crashes_dom0` (hitting a role in dom0's kernel crashes the host), `replaces_target` (the service
is back only as a new incarnation).

Every change a fault makes to a host is a `Change` applied under a `Lease` (`self.apply`): the
host journals it first and undoes it by itself when the lease ends, even if the harness died.
`self.lease` covers the whole window; a fault that changes the host in phases takes one lease per
phase (`self.phase_lease`), so that after a SIGKILL no phase outlasts its own length plus the
margin. The default `_revert` undoes every change still applied. `inject()` and `revert()` run
with interrupting signals held back (harness/signals.py): Ctrl-C, SIGTERM or a pytest-timeout
cannot land between a change and the harness knowing of it.
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
from harness.change import ACTIONS, KINDS, Change
from harness.errors import UsageError
from harness.lease import Lease
from harness.model import ROLE_DEVICE, ROLES, GuestSpec, Pair, peers
from harness.signals import critical
from harness.topology import Topology
from harness.waiting import wait_until

__all__ = ["TARGET_KINDS", "Blast", "Change", "Fault", "Host", "Lease", "NoParams", "Target", "UsageError",
           "describe_params", "get_fault", "installed_faults", "wait_until"]

# what a fault can hit → the roles it may name, and which guest it is about by default
TARGET_KINDS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "role": (ROLES, "the device model's guest: the first HVM guest"),
    "guest-link": (("netback",), "the first guest with a network link"),
    "guest-disk": (("blkback",), "the first guest with a disk"),
    "guest": (ROLES, "the last guest: it acts against the role"),
}
TRUE, FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})

log = logging.getLogger("windsor")


@dataclass(frozen=True)
class Blast:
    """What a fault takes down: these roles (for a device model alone: one guest's, which takes
    that guest whole; for the console: every guest that writes to it, whole), or the host."""

    roles: frozenset[str]
    host_crash: bool = False
    guest: str | None = None
    pairs: frozenset[Pair] = frozenset()  # besides the roles' dependents: these pairs may notice
    guests: frozenset[str] = frozenset()  # and every device of these guests
    links: frozenset[str] = frozenset()  # and the network of these guests and of their echo peers ("*": all)

    def expected(self, guests: tuple[GuestSpec, ...]) -> frozenset[Pair]:
        """The (guest, device) pairs that may notice."""
        if self.host_crash:
            return frozenset((g.name, d) for g in guests for d in g.devices)
        out = set(self.pairs) | {(g.name, d) for g in guests if g.name in self.guests for d in g.devices}
        peer = peers(guests)
        mac = {g.mac: g.name for g in guests}
        out |= {(g.name, "net") for g in guests if g.net and ("*" in self.links or g.name in self.links
                                                               or mac.get(peer.get(g.name, "")) in self.links)}
        for role in self.roles:
            device = ROLE_DEVICE.get(role)
            for g in guests:
                if role == "device-model" and g.hvm and self.guest in (None, g.name):
                    # its guest, whole: on Xen the guest's vCPU waits on the I/O request its device
                    # model has not answered (measured on the lab: docs/design.md)
                    out |= {(g.name, d) for d in g.devices}
                elif role == "console" and device in g.devices:
                    # every guest writing to it, whole: once its console ring is full, Linux's
                    # hvc_xen spins for room with the vCPU held (measured on the lab: docs/design.md)
                    out |= {(g.name, d) for d in g.devices}
                elif device in g.devices and role != "device-model":
                    out.add((g.name, device))
        return frozenset(out)


@dataclass(frozen=True)
class NoParams:
    pass


class Fault(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[Any]] = NoParams
    target_kind: ClassVar[str] = "role"  # a key of TARGET_KINDS
    applies_to: ClassVar[tuple[str, ...]] = ()  # the roles it may hit (default: the target kind's)
    needs: ClassVar[frozenset[str]] = frozenset()  # host capabilities (harness/change.py KINDS)
    crashes_dom0: ClassVar[bool] = False  # does hitting a kernel role in dom0 crash the host?
    replaces_target: ClassVar[bool] = False  # is the service back only as a new incarnation?
    destructive: ClassVar[bool] = True  # runs only on test hosts (or with --allow-destructive)

    def __init__(self, host: Host, target: Target, params: Any) -> None:
        self.host, self.target, self.params = host, target, params
        self.lease = Lease.new(self.name, target.entity, self.window_s, host.lease_margin_s)
        self.injected_at: float | None = None
        self.hits: list[float] = []  # host time of every hit (a fault that repeats adds to it in `hold`)
        self.reverted_at: float | None = None
        self.held: list[Lease] = []  # leases of changes applied and not yet undone

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:  # a concrete fault: its declarations must make sense
            unknown = sorted(cls.needs - set(KINDS))
            if cls.target_kind not in TARGET_KINDS or unknown or set(cls.applies_to) - set(ROLES):
                raise TypeError(f"fault {cls.name!r}: target_kind in {sorted(TARGET_KINDS)}, needs in "
                                f"{sorted(KINDS)}, applies_to in {ROLES} (unknown: {unknown})")

    @classmethod
    def roles(cls) -> tuple[str, ...]:
        """The roles this fault can hit (in the order of ROLES)."""
        allowed = TARGET_KINDS[cls.target_kind][0]
        return tuple(r for r in allowed if not cls.applies_to or r in cls.applies_to)

    @classmethod
    def choose_guest(cls, role: str, guests: tuple[GuestSpec, ...]) -> str | None:
        """The guest the fault is about when the scenario names none (None: not about a guest)."""
        pick = {"guest-link": [g.name for g in guests if g.net], "guest-disk": [g.name for g in guests if g.disk],
                "guest": [g.name for g in guests][-1:]}.get(cls.target_kind)
        if pick is None and role == "device-model":
            pick = [g.name for g in guests if g.hvm]
        if pick is None:
            return None
        if not pick:
            raise UsageError(f"{cls.name} on {role}: no guest fits ({TARGET_KINDS[cls.target_kind][1]})")
        return pick[0]

    @classmethod
    def aim(cls, located: Target) -> Target:
        """The target, from where the host says the role (for `located.guest`) runs: a guest-driven
        fault lands on the guest itself."""
        if cls.target_kind == "guest" and located.guest:
            return Target(located.role, located.guest, None, located.guest)
        return located

    @property
    def last_hit(self) -> float:
        """The host time of the latest hit (0 before the first)."""
        return self.hits[-1] if self.hits else 0.0

    @classmethod
    def reversible(cls) -> bool:
        """Does the fault leave a change behind that `revert` (or its lease's end) undoes?"""
        return bool(cls.needs - ACTIONS) or cls._revert is not Fault._revert

    def phase_lease(self, window_s: float) -> Lease:
        """A lease of its own for one phase of a fault that changes the host more than once."""
        return Lease.new(self.name, self.target.entity, window_s, self.host.lease_margin_s)

    def apply(self, change: Change, lease: Lease | None = None) -> float:
        """Apply `change` under `lease` (default: the fault's own); the host time it took effect.
        `_revert` undoes it unless `undo` did first."""
        lease = lease or self.lease
        self.held.append(lease)
        return self.host.apply(change, lease)

    def undo(self, lease: Lease | None = None) -> float:
        """Undo the change held by `lease` (default: the fault's own); harmless twice."""
        lease = lease or self.lease
        if lease in self.held:
            self.held.remove(lease)
        return self.host.undo(lease)

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
                if kind in (bool, "bool"):
                    if text.lower() not in TRUE | FALSE:
                        raise ValueError(text)
                    values[key] = text.lower() in TRUE
                else:
                    values[key] = float(text) if kind in (float, "float") else int(text) if kind in (int, "int") \
                        else text
            except ValueError:
                raise UsageError(f"fault {cls.name!r}: {key}={text!r} is not a {kind}") from None
        try:
            return cls.Params(**values)
        except UsageError as exc:
            raise UsageError(f"fault {cls.name!r}: {exc}") from None

    @classmethod
    def blast(cls, topology: Topology, role: str, guest: str | None = None, params: Any = None) -> Blast:
        """What the fault (with `params`, once parsed) may take down. By default: every role in
        the domain hosting `role` (all of dom0's when `role` is in its kernel, with a host crash if
        `crashes_dom0`), or the role alone in a dom0 process."""
        domain = topology.domain_of(role, guest)
        if topology.in_dom0_kernel(role):
            return Blast(topology.roles_in("dom0"), host_crash=cls.crashes_dom0)
        if domain == "dom0":
            return Blast(frozenset({role}), guest=guest)
        return Blast(topology.roles_in(domain), guest=guest)

    @property
    def window_s(self) -> float:
        """How long the fault holds before it is reverted: its ``duration_s`` parameter if it has
        one, else 0 (instantaneous). Override it for a window made of other parameters."""
        return float(getattr(self.params, "duration_s", 0.0))

    def inject(self) -> None:
        with critical():
            started = self.host.now()
            try:
                hit = self._inject()
            finally:
                self.injected_at = started  # from here on, revert() must run
            self.injected_at = hit
            self.hits.append(hit)
        log.info("injected %s on %s (%s) at host time %.3f%s", self.name, self.target.entity, self.target.role, hit,
                 f"; the host ends it by itself after {self.lease.total_s:g}s (lease {self.lease.id})"
                 if self.reversible() else "")

    def hold(self) -> None:
        """Keep the fault for its window (`window_s` from the injection), on the host's clock.
        Override it for a fault that acts more than once while it holds (a crash loop, a flap):
        it runs after `inject` and before `revert`, and `revert` runs whatever it raises."""
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
        """Undo `_inject`; return the host time it was undone (None: nothing was left to undo).
        The default undoes every change `apply` made that is still held, newest first."""
        undone = [self.undo(lease) for lease in reversed(list(self.held))]
        return max(undone) if undone else None


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
