"""The host contract: what the harness needs from any host it drives (sim://, xen+ssh://, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from harness.model import ROLES, GuestSpec, Pair
from harness.topology import Topology


@dataclass(frozen=True)
class HostSpec:
    url: str
    scheme: str
    user: str | None = None
    host: str | None = None
    port: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entity:
    """A domain, or a process inside dom0 (``dom0/xenstored``), with its incarnation: the
    incarnation changes when the entity is restarted or rebuilt."""

    name: str
    incarnation: str


@dataclass(frozen=True)
class Target:
    """What a fault on a role hits: a whole domain, or one process of dom0."""

    role: str
    domain: str
    process: str | None = None
    guest: str | None = None

    @property
    def entity(self) -> str:
        return f"{self.domain}/{self.process}" if self.process else self.domain


@dataclass(frozen=True)
class Health:
    ok: bool
    ready_since: float | None = None  # host clock time the serving incarnation became ready


class Host(ABC):
    """One host under test. Times are seconds on the host's clock (`now`), the clock the guests'
    records use."""

    roles: tuple[str, ...] = ROLES  # the roles whose faults this kind of host can inject
    defaults: Mapping[str, str] = {}  # run options (plugin ini names) that suit this kind of host
    fault_defaults: Mapping[str, Mapping[str, str]] = {}  # fault parameters that suit this kind of host
    steady_timeout_s = 30.0  # from `boot` returning to every guest device progressing

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    @classmethod
    def cannot(cls, role: str, fault: str) -> str | None:
        """Why this kind of host cannot run `fault` on `role` (None: it can)."""
        if role not in cls.roles:
            return f"{role} faults are not possible on this kind of host (only {', '.join(cls.roles)})"
        return None

    def adapt(self, guests: Sequence[GuestSpec]) -> tuple[GuestSpec, ...]:
        """The guests as this host can run them (e.g. PV only); by default unchanged."""
        return tuple(guests)

    @abstractmethod
    def boot(self, topology: Topology, guests: Sequence[GuestSpec], cadence: float, seed: int) -> None:
        """Boot the topology, then create and start the guests; return when all are running."""

    @abstractmethod
    def shutdown(self) -> None:
        """Stop everything; afterwards nothing of this host runs. Safe to call twice."""

    @abstractmethod
    def now(self) -> float:
        """The host's monotonic clock."""

    @abstractmethod
    def entities(self) -> tuple[Entity, ...]:
        """Every domain and every dom0 process, with incarnations."""

    @abstractmethod
    def locate(self, role: str, guest: str | None = None) -> Target:
        """Where `role` (for a device model: `guest`'s) runs now."""

    @abstractmethod
    def kill(self, target: Target) -> float:
        """Kill the target outright (its whole process tree / `xl destroy`); return the host
        time at which it was hit (when the signal or hypercall went out)."""

    @abstractmethod
    def pause(self, target: Target, lease_s: float | None = None) -> float:
        """Stop the target from running until `unpause` — or, where the host can, until
        `lease_s` has passed, even if `unpause` never comes; return the host time it stopped."""

    @abstractmethod
    def unpause(self, target: Target) -> float:
        """Undo `pause` (harmless if nothing is paused); return the host time it resumed."""

    @abstractmethod
    def health(self, role: str, guest: str | None = None) -> Health:
        """Does the role answer now? Bounded by a short timeout."""

    @abstractmethod
    def progress(self) -> Mapping[Pair, list[float]]:
        """Completion times of every guest's operations, per (guest, device), oldest first.
        The lists are the host's own, updated by the next call: read them, do not change them."""

    @abstractmethod
    def acked_writes_lost(self) -> int:
        """Acknowledged disk writes that are not on the guests' disks now."""

    @abstractmethod
    def host_reboots(self) -> int:
        """How many times the host rebooted since `boot`."""
