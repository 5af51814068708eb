"""The host contract: what the harness needs from any host it drives (sim://, xen+ssh://, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, Self

from harness import hostlease
from harness.change import Change
from harness.errors import HostError
from harness.hostlease import HostLease
from harness.isolation import Answer, Layout
from harness.lease import Lease
from harness.model import ROLES, XENBUS_DEVICE, GuestSpec, Pair
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
class DeviceState:
    """One split-driver state change of a guest's device (XenbusState: 1 Initialising, 2 InitWait,
    3 Initialised, 4 Connected, 5 Closing, 6 Closed), on the host's clock."""

    t: float
    guest: str
    device: str  # net, disk, console, emul
    end: str  # fe (the guest's frontend) or be (the backend)
    state: int

    @classmethod
    def parse(cls, text: str) -> list[DeviceState]:
        """Lines ``TIME GUEST KIND fe|be STATE`` (KIND as xenstore names it: vif, vbd, ...), as
        both hosts log them; a torn or foreign line is skipped."""
        out = []
        for line in text.splitlines():
            words = line.split()
            if len(words) != 5 or words[3] not in ("fe", "be") or words[2] not in XENBUS_DEVICE:
                continue
            try:
                out.append(cls(float(words[0]), words[1], XENBUS_DEVICE[words[2]], words[3], int(words[4])))
            except ValueError:
                continue
        return out


@dataclass(frozen=True)
class ClaimBudget:
    """How the QoS and scalability suites measure on a kind of host (harness/qos.py,
    harness/scale.py): every domain's CPU budget (dom0's and each service domain's, % of one CPU),
    the guests' cadence while measured (in the run's cadences), how many operations make a QoS
    window, and the scalability steps. The defaults suit sim://, whose vCPU model is the budget."""

    qos_cpu_pct: int = 2  # sim: 1 ms of vCPU a request: far above its real cost
    qos_cadence_factor: float = 10  # sim: 100 ms: dom0 ≈ 35 % busy, quiet
    qos_window_ops: int = 150  # operations of each other guest's device in a window
    scale_cpu_pct: int = 5  # sim: 400 µs of vCPU a request
    scale_cadence_factor: float = 1  # the guests' cadence while stepped, in the run's cadences
    scale_steps: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16, 20, 24)  # guests, a fresh host each
    scale_window_cadences: int = 150


@dataclass(frozen=True)
class Health:
    ok: bool
    ready_since: float | None = None  # host clock time the serving incarnation became ready


class Host(ABC):
    """One host under test. Times are seconds on the host's clock (`now`), the clock the guests'
    records use."""

    roles: tuple[str, ...] = ROLES  # the roles whose faults this kind of host can inject
    # what it can do to them: the kinds of `Change` it can apply, and "kill" (harness/change.py)
    capabilities: ClassVar[frozenset[str]] = frozenset()
    attackers: ClassVar[tuple[str, ...]] = ()  # the roles an isolation attacker can be put in here (`attempt`)
    cpu_accounting: ClassVar[bool] = False  # gives its domains a topology's cpu_pct budget, and `cpu_busy`
    claims: ClassVar[ClaimBudget] = ClaimBudget()  # the QoS and scalability suites' settings here
    defaults: Mapping[str, str] = {}  # run options (plugin ini names) that suit this kind of host
    fault_defaults: Mapping[str, Mapping[str, str]] = {}  # fault parameters that suit this kind of host
    steady_timeout_s = 30.0  # from `boot` returning to every guest device progressing
    lease_margin_s: ClassVar[float] = 2.0  # a lease lasts the fault's window plus this
    settle_timeout_s: ClassVar[float] = 10.0  # after an aborted fault: how long to check the host is back
    reboot_timeout_s: ClassVar[float] = 30.0  # a host that stopped answering: how long it may take to reboot

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self.held: HostLease | None = None  # this run's host lease, while it holds one (`claim`)
        self.applied: dict[str, tuple[Lease, Change]] = {}  # lease id → the change it holds, until undone

    # -- safety ------------------------------------------------------------------------------
    @property
    def test_host(self) -> bool:
        """Is this host marked as one that destructive faults may be run on? (The embedded
        host and the lab are, by construction; a real host says so in its inventory.)"""
        return True

    @property
    def dom0_faults(self) -> bool:
        """May a fault hit dom0 itself here (a scenario whose topology keeps the role in dom0,
        such as the monolithic baseline)? The hypervisor is never a target."""
        return True

    def preflight(self) -> list[str]:
        """Before a session touches the host: is it there and answering? HostError (one line,
        with the fix) if not; else what a user should know about it, one line each (a warning,
        not a refusal). Touches nothing. By default there is nothing to check or say."""
        return []

    def recover(self) -> list[str]:
        """Revert whatever runs that are gone (killed, disconnected) left behind on this host,
        from the host's lease journal; one line per thing done. Leases of live runs are left
        alone. Harmless when there is nothing to do."""
        return []

    # -- the host lease: one run at a time (harness/hostlease.py) -------------------------------
    def claim(self, lease: HostLease) -> list[str]:
        """Take the host's exclusive lease for this run — or renew the one held (`self.held`),
        or take over a stale one — atomically; what was done, one line each. HostLeased (naming
        the holder and until when) if another live run holds the host."""
        self.held, said = hostlease.claim(self.swap_lease, lease, self.held)
        return said

    def release(self) -> list[str]:
        """Give the host lease back (harmless when none is held, or twice); lines to say."""
        held, self.held = self.held, None
        said = hostlease.release(self.swap_lease, held) if held is not None else None
        return [said] if said else []

    def swap_lease(self, expected: str, new: str) -> str:
        """Atomically: if the host's lease record reads `expected` now ("" = none), make it `new`
        ("" removes it). Return the record as it was read; it equals `expected` when swapped."""
        raise HostError(f"{self.spec.scheme}:// hosts keep no host lease")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()

    @classmethod
    def cannot(cls, role: str, fault: str) -> str | None:
        """Why this kind of host cannot run `fault` on `role` (None: it can): derived from the
        roles it can fault and the capabilities it declares against what the fault needs."""
        from harness.fault import get_fault

        fault_cls = get_fault(fault)
        if role not in fault_cls.roles():
            return f"{fault} applies to {', '.join(fault_cls.roles())} only, not {role}"
        if role not in cls.roles and fault_cls.target_kind != "guest":  # a guest's act needs no hold on the role
            return f"{role} faults are not possible on this kind of host (only {', '.join(cls.roles)})"
        missing = sorted(fault_cls.needs - cls.capabilities)
        if missing:
            return f"{fault} needs {', '.join(missing)}, which this kind of host cannot do"
        return None

    def planned_target(self, topology: Topology, role: str, guest: str | None = None) -> Target:
        """Where a fault on `role` will land once `topology` is booted here (touches nothing)."""
        return Target(role, topology.domain_of(role, guest), guest=guest)

    def adapt(self, guests: Sequence[GuestSpec], roles: tuple[str, ...] = ()) -> tuple[GuestSpec, ...]:
        """The guests as this host can run them (e.g. PV only), for a session that tests `roles`
        (empty: all); by default unchanged."""
        return tuple(guests)

    def reusable(self) -> str | None:
        """Why the topology booted here cannot serve another case as it is (None: it can): a
        lease still held, a domain missing, a reboot since `boot` (harness/reuse.py). By
        default a host is booted afresh for every case."""
        return f"{self.spec.scheme}:// hosts are booted afresh for every case"

    def layout(self) -> Layout:
        """Every guest device with both its xenstore directories and the domain serving it, as dom0
        sees it now: what an attacker's attempts are aimed at (harness/isolation.py)."""
        raise HostError(f"{self.spec.scheme}:// hosts cannot be attacked yet")

    def attempt(self, attacker: str, action: str, target: str) -> Answer:
        """Make one attempt of harness/isolation.py's `ACTIONS` with domain `attacker`'s own
        privileges; what the system answered. HostError when it could not be made at all."""
        raise HostError(f"{self.spec.scheme}:// hosts cannot be attacked yet")

    @abstractmethod
    def boot(self, topology: Topology, guests: Sequence[GuestSpec], cadence: float, seed: int) -> None:
        """Boot the topology, then create and start the guests; return when all are running."""

    def build(self) -> str:
        """What runs on this host, for reports: the hypervisor and control domain versions (asked
        once the host is booted). By default, the harness's own version."""
        from harness import __version__

        return f"{self.spec.scheme} host, windsor-harness {__version__}"

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

    def apply(self, change: Change, lease: Lease) -> float:
        """Apply `change` until `undo(lease)`, or until `lease.total_s` has passed, whichever comes
        first — even if the harness is gone by then: the host journals the change with its lease
        before it applies it, and undoes it by itself when the lease ends (a dead-man's switch on
        the host side). One lease holds one change. Return the host time it took effect.
        HostError (one line) if the host cannot apply it; nothing is left applied then."""
        if change.kind not in self.capabilities:
            raise HostError(f"{self.spec.scheme}:// hosts cannot apply {change.describe()}")
        self.applied[lease.id] = (lease, change)
        return self._apply(change, lease)

    def undo(self, lease: Lease) -> float:
        """Undo the change `lease` holds and clear the lease: harmless if it was undone already
        (by the harness, or by the host at the lease's end), or twice. The host time it was undone."""
        held = self.applied.pop(lease.id, None)
        return self.now() if held is None else self._undo(*held)

    def _apply(self, change: Change, lease: Lease) -> float:
        raise HostError(f"{self.spec.scheme}:// hosts apply no changes")

    def _undo(self, lease: Lease, change: Change) -> float:
        raise HostError(f"{self.spec.scheme}:// hosts apply no changes")

    def pause(self, target: Target, lease: Lease) -> float:
        """Stop the target from running (the change ``pause``, under `lease`)."""
        return self.apply(Change.at("pause", target), lease)

    def throttle(self, target: Target, cap_pct: int, lease: Lease) -> float:
        """Let the target run at most `cap_pct` % of one CPU (the change ``cap``, under `lease`)."""
        return self.apply(Change.at("cap", target, cap_pct=int(cap_pct)), lease)

    def unpause(self, target: Target) -> float:
        """Undo every change held on the target's entity; the host time the last was undone."""
        held = [lease for lease, change in list(self.applied.values()) if change.entity == target.entity]
        return max((self.undo(lease) for lease in held), default=self.now())

    @abstractmethod
    def health(self, role: str, guest: str | None = None) -> Health:
        """Does the role answer now? Bounded by a short timeout."""

    @abstractmethod
    def progress(self) -> Mapping[Pair, list[float]]:
        """Completion times of every guest's operations, per (guest, device), oldest first.
        The lists are the host's own, updated by the next call: read them, do not change them."""

    def latencies(self) -> Mapping[Pair, list[tuple[float, float]]]:
        """How long each of every guest's operations took, as (completion time, seconds), per
        (guest, device), oldest first (the records' latency field). HostError where the host's
        records carry none."""
        raise HostError(f"{self.spec.scheme}:// hosts do not record per-operation latency yet")

    def cpu_busy(self) -> Mapping[str, float]:
        """Every domain's CPU time so far (the service domains' and dom0's), in seconds of its
        budget: a domain capped at 5 % of a CPU that ran 0.05 s has used 1 s of it. What
        `harness/scale.py` compares with the time gone by. HostError where the host cannot say."""
        raise HostError(f"{self.spec.scheme}:// hosts cannot report their domains' CPU time yet")

    def device_states(self) -> list[DeviceState]:
        """Every frontend's and backend's state change since `boot`, oldest first (from xenstore).
        By default none are recorded."""
        return []

    @abstractmethod
    def acked_writes_lost(self) -> int:
        """Acknowledged disk writes that are not on the guests' disks now."""

    @abstractmethod
    def host_reboots(self) -> int:
        """How many times the host rebooted since `boot`."""
