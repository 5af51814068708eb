"""Security isolation: what an attacker with code execution in one service's domain can reach.

The attacker sits where a role lives (netdd for netback on the disaggregated topology; dom0 on the
monolithic one) and tries, with that domain's own identity, what the host gives it to try with:
xenstore reads and writes, mapping grant references, mapping a guest's memory (privcmd's foreign
map), a privileged hypercall (pausing a domain), reading a guest's disk, capturing a guest's frames.
Each attempt is one row: allowed or denied, with what the system answered. Its duties (the devices
it serves) it must be able to use — that proves it really tried; an attempt outside them that was
denied counts only if the same attempt, made where it must succeed (dom0, or the domain the grant,
disk or link belongs to), did succeed: its positive control. Attempts, the plan of them and the
verdict live here; how an attempt is made is each host's (`Host.attempt`), from one catalogue:
`ACTIONS`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import HostError, UsageError
from harness.model import ROLE_DEVICE, fleet

if TYPE_CHECKING:
    from harness.backend.base import Host
    from harness.scenario import RunOptions

log = logging.getLogger("windsor")

ROLES = ("netback", "blkback", "device-model")  # the services an attacker may own
PREFERRED = ("disk", "net", "emul", "console")  # whose device the attempts outside the duties aim at
# action → what it tries; the target is a xenstore path (xs-*, grant-map: the node holding the
# reference) or a guest's name
ACTIONS: Mapping[str, str] = {
    "xs-read": "read a xenstore node",
    "xs-write": "write a xenstore node (the value it holds)",
    "grant-map": "map the grant reference a frontend published",
    "foreign-map": "map a page of a guest's memory through privcmd",
    "domctl-pause": "pause a domain, and unpause it (a privileged domctl)",
    "disk-read": "read the first sector of a guest's disk",
    "sniff": "capture one frame of a guest's network traffic",
}


@dataclass(frozen=True)
class Device:
    guest: str
    kind: str  # net, disk, console, emul (harness/model.py)
    path: str  # the frontend's xenstore directory
    backend_path: str  # the backend's
    backend: str  # the domain serving it
    ring: str  # the frontend's node that holds its ring's grant reference ("" if none)


@dataclass(frozen=True)
class Layout:
    """What the attempts are aimed at, as dom0 sees it on a booted host."""

    devices: tuple[Device, ...]
    private: Mapping[str, str]  # guest → a node of its own no service needs (its name)


@dataclass(frozen=True)
class Answer:
    allowed: bool
    detail: str  # what the system said: "ok", "EACCES from xenstored", "domctl: Operation not permitted"


@dataclass(frozen=True)
class Attempt:
    action: str
    target: str
    what: str  # the row's name, the same on every topology: "another guest's memory"
    duty: bool  # within the attacker's duties
    control: str = ""  # where the same attempt must succeed (outside the duties)


@dataclass(frozen=True)
class Tried:
    attempt: Attempt
    answer: Answer
    control: Answer | None = None

    @property
    def reachable(self) -> bool:
        return self.answer.allowed and not self.attempt.duty

    @property
    def proven(self) -> bool:
        """Allowed, or denied where the same attempt succeeded."""
        return self.answer.allowed or (self.control is not None and self.control.allowed)

    def row(self) -> str:
        said = "allowed" if self.answer.allowed else f"denied ({self.answer.detail})"
        if self.control is not None:
            ok = "ok" if self.control.allowed else f"FAILED ({self.control.detail})"
            said += f"; as {self.attempt.control}: {ok}"
        return f"{self.attempt.what} [{self.attempt.action} {self.attempt.target}]: {said}"


@dataclass(frozen=True)
class Inspection:
    topology: str
    role: str
    attacker: str
    tried: tuple[Tried, ...]

    @property
    def reachable(self) -> tuple[str, ...]:
        return tuple(t.attempt.what for t in self.tried if t.reachable)

    @property
    def outside(self) -> int:
        return sum(not t.attempt.duty for t in self.tried)

    def failures(self) -> list[str]:
        """Why the attempts do not show what they claim: a duty the attacker could not use (then
        nothing it was denied means anything), a denial nobody proved could succeed."""
        out = [f"{t.attempt.what} is its duty but was denied ({t.answer.detail})"
               for t in self.tried if t.attempt.duty and not t.answer.allowed]
        out += [f"{t.attempt.what}: denied, but its control as {t.attempt.control} failed too "
                f"({t.control.detail if t.control else 'not run'})" for t in self.tried if not t.proven]
        return out

    def properties(self, prefix: str = "") -> list[tuple[str, str]]:
        return [(prefix + k, v) for k, v in (
            ("topology", self.topology), ("target_role", self.role), ("attacker", self.attacker),
            ("isolation_attempts", str(self.outside)), ("isolation_reachable", str(len(self.reachable))),
            ("isolation_reachable_list", "; ".join(self.reachable) or "none"),
            ("isolation_unproven", str(sum(not t.proven for t in self.tried))),
            ("isolation_rows", " | ".join(t.row() for t in self.tried)),
        )]


def plan(layout: Layout, role: str, attacker: str, target: str | None) -> tuple[Attempt, ...]:
    """The attempts of an attacker in `attacker`, where `role` lives (`target`: the device model's
    guest): its duties first, then everything a service of that role has no business with."""
    kind = ROLE_DEVICE[role]
    own = [d for d in layout.devices if d.kind == kind and d.backend == attacker and target in (None, d.guest)]
    if not own:
        raise HostError(f"{attacker} serves no {kind} device here: nothing to attack from")
    mine = own[0]
    # another service's device: of another kind (every vif is netback's duty wherever it runs), or
    # another guest's device model
    others = sorted((d for d in layout.devices if d.ring and d.guest in layout.private
                     and (d.kind != kind or (kind == "emul" and d.guest != mine.guest))
                     and (kind != "emul" or d.guest != mine.guest)),
                    key=lambda d: (d.guest == mine.guest, PREFERRED.index(d.kind) if d.kind in PREFERRED else 9,
                                   d.kind == kind, d.guest))
    if not others:
        raise HostError(f"no guest device outside {attacker}'s duties to aim at: use more guests")
    other = others[0]
    victim = other.guest
    out = [
        Attempt("xs-read", f"{mine.path}/state", "its own device's frontend node", True),
        Attempt("xs-write", f"{mine.backend_path}/state", "its own device's backend node", True),
    ]
    if mine.ring:
        out.append(Attempt("grant-map", f"{mine.path}/{mine.ring}", "its own device's ring grant", True))
    out.append({"net": Attempt("sniff", mine.guest, "its own guest's traffic", True),
                "disk": Attempt("disk-read", mine.guest, "its own guest's disk", True),
                "emul": Attempt("foreign-map", mine.guest, "its own guest's memory", True)}[kind])
    out += [
        Attempt("xs-read", layout.private[victim], "another guest's own node", False, "dom0"),
        Attempt("xs-read", f"{other.path}/{other.ring}", "another service's frontend node", False, "dom0"),
        Attempt("xs-write", f"{other.path}/state", "another service's frontend state", False, "dom0"),
        Attempt("xs-read", f"{other.backend_path}/state", "another service's backend node", False, "dom0"),
        Attempt("xs-write", f"{other.backend_path}/state", "another service's backend state", False, "dom0"),
        Attempt("grant-map", f"{other.path}/{other.ring}", "another service's ring grant", False, other.backend),
        Attempt("foreign-map", victim, "another guest's memory", False, "dom0"),
        Attempt("domctl-pause", victim, "pause another guest", False, "dom0"),
    ]
    for dev in (d for d in layout.devices if d.guest == victim):
        if dev.kind == "disk" and kind != "disk":
            out.append(Attempt("disk-read", victim, "another guest's disk", False, dev.backend))
        if dev.kind == "net" and kind != "net":
            out.append(Attempt("sniff", victim, "another guest's traffic", False, dev.backend))
    return tuple(out)


def attack(host: Host, role: str, target: str | None) -> tuple[str, tuple[Tried, ...]]:
    """Locate `role` on the booted `host`, make every attempt of its plan from there, and each
    denied one again as its control."""
    attacker = host.locate(role, target).domain
    attempts = plan(host.layout(), role, attacker, target)
    tried = []
    for a in attempts:
        answer = host.attempt(attacker, a.action, a.target)
        control = host.attempt(a.control, a.action, a.target) if a.control and not answer.allowed else None
        tried.append(Tried(a, answer, control))
        log.info("from %s: %s", attacker, tried[-1].row())
    return attacker, tuple(tried)


def inspect(opts: RunOptions, topology_name: str, role: str) -> Inspection:
    """Boot (or reuse) `topology_name` on the run's host, wait for its steady state, attack from
    `role`'s domain. The host is kept for the next case: nothing here changes it."""
    from harness import reuse
    from harness.topology import load_topology

    if role not in ROLES:
        raise UsageError(f"no isolation attempts from {role!r}: use one of {', '.join(ROLES)}")
    topology = load_topology(topology_name)
    guests = fleet(opts.guests, opts.seed)
    target = next((g.name for g in guests if g.hvm), None) if role == "device-model" else None
    if role == "device-model" and target is None:
        raise UsageError("no HVM guest to own a device model of: use more guests (--guests 3 or more)")
    with reuse.booted(opts, topology, guests, (role,)) as (host, _):
        attacker, tried = attack(host, role, target)
    return Inspection(topology.name, role, attacker, tried)
