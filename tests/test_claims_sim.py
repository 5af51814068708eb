"""What the QoS and scalability suites stand on, on sim://: sharded driver domains serve their own
guests (and netback shards reach each other), every operation's latency is recorded, a domain's
CPU budget bounds what it serves, and a noisy neighbour's flood is undone by the host itself when
its lease ends."""

import bisect
import dataclasses
import os
from collections.abc import Iterator

import pytest

from harness.backend import get_host
from harness.backend.sim import SimHost
from harness.change import Change
from harness.lease import Lease
from harness.model import GuestSpec, fleet, pairs
from harness.runner import progressing, steady
from harness.sim.vcpu import OP_COST_S
from harness.topology import load_topology
from harness.waiting import wait_until

CADENCE = 0.01


@pytest.fixture
def host() -> Iterator[SimHost]:
    h = get_host("sim://")
    assert isinstance(h, SimHost)
    with h:
        yield h


def boot(host: SimHost, topology: str, n: int, cpu_pct: int = 100) -> tuple[GuestSpec, ...]:
    guests = fleet(n, 0)
    host.boot(dataclasses.replace(load_topology(topology), cpu_pct=cpu_pct), guests, CADENCE, 0)
    assert steady(host, pairs(guests), 20)
    return guests


def count(times: list[float], start: float, end: float) -> int:
    return bisect.bisect_right(times, end) - bisect.bisect_right(times, start)


def test_each_tenant_is_served_by_its_own_shard(host: SimHost) -> None:
    guests = boot(host, "per-tenant", 4)
    served = {(d.guest, d.kind): d.backend for d in host.layout().devices}
    for g in guests:
        if g.disk:
            assert served[(g.name, "disk")] == f"blkdd-{g.name}"
        if g.net:
            assert served[(g.name, "net")] == f"netdd-{g.name}"
    # every ping crosses from one guest's netdd to its peer's, over the wire, and comes back
    t = host.now()
    assert wait_until("every device progressing", lambda: progressing(host, pairs(guests), t, 20), 20)
    running = {d["name"] for d in host.status()["domains"]}
    assert {f"netdd-{g.name}" for g in guests} <= running and {f"blkdd-{g.name}" for g in guests} <= running


def test_two_netdds_each_serve_half_of_the_guests(host: SimHost) -> None:
    guests = boot(host, "two-netdds", 6)
    served = {d.guest: d.backend for d in host.layout().devices if d.kind == "net"}
    assert set(served.values()) == {"netdd1", "netdd2"}, served
    assert [served[g.name] for g in guests if g.name in served] == sorted(served[g.name] for g in guests
                                                                          if g.name in served)  # in blocks


def test_every_operation_carries_its_latency(host: SimHost) -> None:
    guests = boot(host, "disaggregated", 3)
    t = host.now()
    assert wait_until("operations", lambda: progressing(host, pairs(guests), t, 20), 10)
    lat = host.latencies()
    for g in guests:
        for device in ("net", "disk", "console") if g.net else ("disk", "console"):
            if device in g.devices:
                took = [x for _, x in lat[(g.name, device)]]
                assert len(took) >= 20 and all(0 < x < 1.0 for x in took), (g.name, device, took[:5])
    assert len(lat[("g01", "disk")]) == len(host.progress()[("g01", "disk")])  # one per completed operation


def test_a_budget_bounds_a_domain_and_the_host_ends_a_flood_by_itself(host: SimHost) -> None:
    """A noisy neighbour saturates blkdd at 2 % of a CPU: it serves at most 1 / (1 ms) requests a
    second, busy (nearly) all the time; the flood's lease ends without the harness, and so does it."""
    boot(host, "disaggregated", 3, cpu_pct=2)
    cost = OP_COST_S * 100 / 2
    lease = Lease.new("flood", "g01", 1.5, 0.5)
    busy0, start = host.cpu_busy(), host.now()
    host.apply(Change("flood", "g01", guest="g01", args={"device": "disk"}), lease)
    flood = ("g01", "disk-flood")
    assert wait_until("the flood's requests", lambda: len(host.progress().get(flood, [])) > 200, 10)
    # never undone here: the host ends it when the lease does (2 s), and the guest stops flooding
    assert wait_until("the flood's flag gone", lambda: not host.status()["leases"], 10)
    end = host.now()
    busy = (host.cpu_busy()["blkdd"] - busy0.get("blkdd", 0.0)) / (end - start)
    times = host.progress()[flood]
    served = count(times, start, end) / (end - start)
    print(f"blkdd at 2 %: {served:.0f} flood requests/s (at most {1 / cost:.0f}), busy {busy:.0%} of its budget")
    assert served <= 1.05 / cost, f"blkdd served {served:.0f} flood requests/s at a budget of {1 / cost:.0f}"
    assert 0.5 < busy <= 1.0, f"blkdd busy {busy:.0%} of its budget while flooded"
    after = host.now() + 5 * CADENCE
    t = host.now()
    assert wait_until("the disks at their cadence", lambda: progressing(host, pairs(fleet(3, 0)), t, 10), 10)
    assert count(host.progress()[flood], after, host.now()) == 0  # no flood request after it ended
    assert not any(p.startswith("flood-") for p in _flags(host))


def _flags(host: SimHost) -> list[str]:
    try:
        return os.listdir(os.path.join(host.run_dir, "flags"))
    except FileNotFoundError:
        return []


def test_a_flood_of_an_unknown_device_is_refused_before_anything_changes(host: SimHost) -> None:
    from harness.errors import HostError

    boot(host, "disaggregated", 2)
    with pytest.raises(HostError, match="device must be one of disk, net"):
        host.apply(Change("flood", "g01", guest="g01", args={"device": "console"}), Lease.new("flood", "g01", 1, 1))
    assert not host.status()["leases"] and not _flags(host)
