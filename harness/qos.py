"""QoS under a noisy neighbour: how much one tenant's I/O load moves everyone else's latency.

One guest (the noisy one: the first with the device) drives its disk, or its network, as hard as
it can (the change ``flood``: no cadence, a full ring of requests in flight). The other guests run
their normal workload. Each of their operations of that device carries its latency in the records
(`Host.latencies`); the figures are the others' p50, p99 and maximum with the noisy guest quiet,
then loaded, and the ratio of the two p99s. A flood that did not raise the noisy guest's own rate
(`FLOOD_SPEEDUP`) proves nothing: the measurement fails then, it is not a figure. On the network,
a guest whose echo peer is the noisy one is not counted among the others: its operation waits for
the noisy guest's own answer.

Every domain has the same CPU budget (`ClaimBudget.qos_cpu_pct` % of one CPU, per kind of host:
dom0 and each service domain alike; on sim:// the model of harness/sim/vcpu.py, on Xen credit2's
cap), so the topologies differ only in who shares
what: on the monolithic one dom0 serves every tenant; on the disaggregated one a driver domain
serves every tenant of its device; on ``per-tenant`` the noisy tenant has its own.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.change import FLOOD_DEVICES, Change
from harness.errors import HostError, UsageError
from harness.lease import Lease
from harness.model import KERNEL_ROLES, ROLE_DEVICE, Pair, fleet, peers
from harness.vocabulary import fmt
from harness.waiting import wait_until

if TYPE_CHECKING:
    from harness.backend.base import Host
    from harness.scenario import RunOptions

log = logging.getLogger("windsor")
SETTLE_CADENCES = 5  # the flood is on within a cadence of its change; the loaded window starts after this
FLOOD_SPEEDUP = 2.0  # the noisy guest's own rate, loaded over quiet, at least
GOAL_RATIO = 2.0  # the claim: the others' p99 stays within 2× of quiet
TOPOLOGIES = ("disaggregated", "per-tenant")  # each beside the run's baseline (monolithic)
ROLE_OF = {ROLE_DEVICE[r]: r for r in KERNEL_ROLES}  # disk: blkback, net: netback


@dataclass(frozen=True)
class Window:
    ops: int
    p50_s: float
    p99_s: float
    max_s: float

    @classmethod
    def of(cls, latencies: Sequence[float]) -> Window:
        xs = sorted(latencies)
        if not xs:
            raise HostError("no operations of the other guests in the window")
        return cls(len(xs), xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.99))], xs[-1])


@dataclass(frozen=True)
class Noisy:
    topology: str
    device: str
    noisy: str
    quiet: Window
    loaded: Window
    speedup: float  # the noisy guest's own rate, loaded over quiet
    cdf_quiet: tuple[float, ...]  # the others' latencies at every 5th percentile (for the report's CDF)
    cdf_loaded: tuple[float, ...]
    isolated: bool  # the noisy guest's device has a domain of its own (the goal applies)
    cpu_pct: int  # every domain's budget while measured

    @property
    def ratio(self) -> float:
        return self.loaded.p99_s / self.quiet.p99_s if self.quiet.p99_s > 0 else float("inf")

    def properties(self, prefix: str = "") -> list[tuple[str, str]]:
        cdf = ";".join(",".join(f"{x:.6f}" for x in c) for c in (self.cdf_quiet, self.cdf_loaded))
        values: list[tuple[str, object]] = [
            ("topology", self.topology), ("qos_device", self.device), ("qos_noisy", self.noisy),
            ("qos_cpu_pct", self.cpu_pct), ("qos_isolated", self.isolated),
            ("qos_quiet_p50_s", self.quiet.p50_s), ("qos_quiet_p99_s", self.quiet.p99_s),
            ("qos_quiet_max_s", self.quiet.max_s), ("qos_loaded_p50_s", self.loaded.p50_s),
            ("qos_loaded_p99_s", self.loaded.p99_s), ("qos_loaded_max_s", self.loaded.max_s),
            ("qos_p99_ratio", self.ratio), ("qos_noisy_speedup", self.speedup),
            ("qos_ops", f"{self.quiet.ops};{self.loaded.ops}"), ("qos_cdf_s", cdf),
        ]
        return [(prefix + k, fmt(v)) for k, v in values]


def _cdf(latencies: Sequence[float]) -> tuple[float, ...]:
    xs = sorted(latencies)
    return tuple(xs[min(len(xs) - 1, len(xs) * q // 20)] for q in range(21)) if xs else ()


def _since(samples: Sequence[tuple[float, float]], start: float, end: float) -> list[float]:
    times = [t for t, _ in samples]
    return [lat for _, lat in samples[bisect.bisect_right(times, start):bisect.bisect_right(times, end)]]


def _window(host: Host, others: Sequence[Pair], noisy: Pair, start: float, what: str,
            cadence_s: float) -> tuple[list[float], int, float]:
    """Wait until every other guest's device did the budget's window of operations after `start`; their
    latencies, the noisy guest's requests in the window (its operations, and its flood's
    ``DEVICE-flood`` records), and the window's end."""
    ops = host.claims.qos_window_ops

    def enough() -> bool:
        lat = host.latencies()
        return all(len(_since(lat.get(p, []), start, float("inf"))) >= ops for p in others)

    deadline = ops * cadence_s * 10 + host.steady_timeout_s
    if not wait_until(f"{what}: {ops} operations of each other guest's device", enough, deadline):
        raise HostError(f"{what}: the other guests did not do {ops} operations each within {deadline:.0f}s")
    end = host.now()
    lat: Mapping[Pair, list[tuple[float, float]]] = host.latencies()
    others_lat = [x for p in others for x in _since(lat.get(p, []), start, end)]
    flood = host.progress().get((noisy[0], f"{noisy[1]}-flood"), [])
    flooded = bisect.bisect_right(flood, end) - bisect.bisect_right(flood, start)
    return others_lat, len(_since(lat.get(noisy, []), start, end)) + flooded, end


_measured: dict[tuple[object, ...], Noisy] = {}


def measure(opts: RunOptions, topology_name: str, device: str) -> Noisy:
    """Boot (or reuse) `topology_name` at the QoS budget; the others' latencies quiet, then with the
    noisy guest flooding `device`. The flood is a leased change: undone here, or by the host. A
    topology measured already in this session for the same host, guests, seed and cadence (the
    baseline beside each case) is not measured again."""
    key = (opts.host, topology_name, device, opts.guests, opts.seed, opts.cadence_s)
    if key not in _measured:
        _measured[key] = _measure(opts, topology_name, device)
    return _measured[key]


def _measure(opts: RunOptions, topology_name: str, device: str) -> Noisy:
    from harness import reuse
    from harness.backend import host_class
    from harness.topology import load_topology

    if device not in FLOOD_DEVICES:
        raise UsageError(f"no noisy neighbour on {device!r}: use one of {', '.join(FLOOD_DEVICES)}")
    budget = host_class(opts.host).claims
    topology = dataclasses.replace(load_topology(topology_name), cpu_pct=budget.qos_cpu_pct)
    guests = fleet(opts.guests, opts.seed)
    cadence_s = opts.cadence_s * budget.qos_cadence_factor
    # the role under test's guests (on Xen: PV guests only, no device model to boot)
    with reuse.booted(opts, topology, guests, (ROLE_OF[device],), cadence_s) as (host, running):
        users = [g.name for g in running if device in g.devices]
        if len(users) < 2:
            raise UsageError(f"a noisy neighbour on {device} needs two guests with it: use more guests")
        echo = peers(running)
        mac = {g.name: g.mac for g in running}
        # a guest whose echo peer is the noisy one waits for the noisy one's own answers: not "other"
        noisy = (users[0], device)
        others = [(g, device) for g in users[1:] if device != "net" or echo.get(g) != mac[users[0]]]
        if not others:
            raise UsageError(f"a noisy neighbour on {device} needs another guest with it that is not its echo peer: "
                             "use more guests")
        start = host.now()
        quiet, quiet_n, quiet_end = _window(host, others, noisy, start, f"{topology.name} quiet", cadence_s)
        quiet_span = quiet_end - start
        # long enough for a slow loaded window; the host ends the flood itself if the harness does not
        lease = Lease.new("flood", noisy[0], max(60.0, 4 * budget.qos_window_ops * cadence_s),
                          host.lease_margin_s)
        hit = host.apply(Change("flood", noisy[0], guest=noisy[0], args={"device": device}), lease)
        try:
            start = hit + SETTLE_CADENCES * cadence_s
            what = f"{topology.name} with {noisy[0]} flooding"
            loaded, loaded_n, loaded_end = _window(host, others, noisy, start, what, cadence_s)
        finally:
            host.undo(lease)
        speedup = (loaded_n / (loaded_end - start)) / (quiet_n / quiet_span) if quiet_n else float("inf")
        role = ROLE_OF[device]
        bound = topology.bind(tuple(g.name for g in running))
        isolated = all(bound.domain_of(role, noisy[0]) != bound.domain_of(role, g) for g, _ in others)
        result = Noisy(topology.name, device, noisy[0], Window.of(quiet), Window.of(loaded), speedup,
                       _cdf(quiet), _cdf(loaded), isolated, topology.cpu_pct)
        log.info("%s, %s flooding %s: others' p99 %.2f → %.2f ms (×%.1f); its own rate ×%.1f", topology.name,
                 noisy[0], device, result.quiet.p99_s * 1e3, result.loaded.p99_s * 1e3, result.ratio, speedup)
        if speedup < FLOOD_SPEEDUP:
            raise HostError(f"{noisy[0]}'s flood of its {device} did not take: its rate rose only ×{speedup:.1f} "
                            f"(at least ×{FLOOD_SPEEDUP:g} expected)")
        return result
