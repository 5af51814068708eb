"""Changes: the one primitive through which a fault alters a host's state.

A `Change` is a typed, serialisable apply/undo pair: what to change (`kind`), where (`Target`)
and how much (`args`). A host applies it only under a `Lease` (harness/lease.py): it journals the
change *before* applying it, and undoes it by itself when the lease ends, even if the harness is
gone (the sim:// manager's `LeaseKeeper`; ``windsor-lease`` in a Xen control domain). Undoing
twice is harmless. `Host.pause` and `Host.throttle` are just two kinds of change.

Each kind is a capability: a host kind says which kinds it can apply (`Host.capabilities`), a
fault says which it needs (`Fault.needs`), and the scenario matrix, `Host.cannot`, ``--dry-run``
and ``windsor faults`` are derived from the two. `KINDS` is the list, with what each one means;
a kind a host cannot apply is refused before anything is injected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.errors import UsageError


class Aimed(Protocol):
    """Where a change lands (a `harness.backend.base.Target`)."""

    @property
    def domain(self) -> str: ...
    @property
    def process(self) -> str | None: ...
    @property
    def guest(self) -> str | None: ...

# capability → what it does (the kinds of change, plus the two actions that are not changes)
KINDS: Mapping[str, str] = {
    "kill": "kill the domain or dom0 process (not a change: nothing to undo; the host restarts it)",
    "pause": "stop the domain or dom0 process from running",
    "cap": "let the domain or dom0 process use at most args.cap_pct % of one CPU",
    "link-down": "drop every frame to and from one guest's network link (args: none; the target's guest)",
    "disk-error": "answer every request on one guest's disk with an I/O error (EIO)",
    "memory": "lower the memory the domain (or dom0 process) may use to args.memory_pct % of what it uses now",
    "xenstore-storm": "make one guest write and watch its own xenstore nodes in a loop",
    "flood": "make one guest drive its args.device (disk or net) as hard as it can: no cadence, a full ring",
}
FLOOD_DEVICES = ("disk", "net")
ACTIONS = frozenset({"kill"})  # capabilities that are not leased changes


@dataclass(frozen=True)
class Change:
    """One change to a host, applied under a lease and undone by the host at the lease's end."""

    kind: str
    domain: str  # the domain it is applied in (a service domain, dom0, or a guest)
    process: str | None = None  # a dom0 process (``xenstored``), or None for the whole domain
    guest: str | None = None  # the guest whose link, disk or xenstore nodes it is about
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.kind in ACTIONS:
            raise UsageError(f"unknown kind of change {self.kind!r}: use one of "
                             f"{', '.join(k for k in KINDS if k not in ACTIONS)}")

    @classmethod
    def at(cls, kind: str, target: Aimed, **args: Any) -> Change:
        """A change of `kind` on `target` (its domain, process and guest)."""
        return cls(kind, target.domain, target.process, target.guest, args)

    @property
    def entity(self) -> str:
        return f"{self.domain}/{self.process}" if self.process else self.domain

    def describe(self) -> str:
        about = f" ({self.guest}'s)" if self.guest and self.guest != self.domain else ""
        args = ",".join(f"{k}={v}" for k, v in sorted(self.args.items()))
        return f"{self.kind}{about} on {self.entity}" + (f" [{args}]" if args else "")

    def to_json(self) -> str:
        return json.dumps({"kind": self.kind, "domain": self.domain, "process": self.process,
                           "guest": self.guest, "args": dict(self.args)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> Change:
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(str(data["kind"]), str(data["domain"]), data.get("process"), data.get("guest"),
                   dict(data.get("args") or {}))
