"""The sim:// host itself: acked writes survive blkback being killed mid-write, a rebuilt
domain is a new incarnation while the others keep theirs, and teardown leaves nothing behind."""

from helpers import sim_processes

from harness.backend.sim import SimHost
from harness.model import GuestSpec, pairs
from harness.runner import progressing
from harness.sim import paths
from harness.waiting import wait_until


def _disk_ops(host: SimHost) -> int:
    return sum(len(ts) for (g, d), ts in host.progress().items() if d == "disk")


def test_killing_blkback_mid_write_loses_no_acked_write(booted: tuple[SimHost, tuple[GuestSpec, ...]]) -> None:
    host, guests = booted
    disk = frozenset((g.name, "disk") for g in guests if g.disk)
    for _ in range(3):
        before = _disk_ops(host)
        assert wait_until("disk writes", lambda n=before: _disk_ops(host) > n + 10, 10)
        host.kill(host.locate("blkback"))  # writes are in flight every 10 ms: some die unacked
        t = host.now()
        assert wait_until("disks back", lambda t=t: progressing(host, disk, t, 5), 15)
    assert _disk_ops(host) > 50
    assert host.acked_writes_lost() == 0
    # the check is real: damage one acknowledged block and it is counted
    name = next(g.name for g in guests if g.disk)
    with open(paths.disk(host.run_dir, name), "r+b") as fh:
        fh.write(b"X")
    assert host.acked_writes_lost() == 1


def test_rebuild_is_a_new_incarnation_and_nothing_else_changes(
    booted: tuple[SimHost, tuple[GuestSpec, ...]],
) -> None:
    host, guests = booted
    before = {e.name: e.incarnation for e in host.entities()}
    host.kill(host.locate("console"))
    assert wait_until("console back", lambda: host.health("console").ok, 10)
    after = {e.name: e.incarnation for e in host.entities()}
    assert after["console-dom"] != before["console-dom"]
    assert {n: i for n, i in after.items() if n != "console-dom"} == {
        n: i for n, i in before.items() if n != "console-dom"
    }
    t = host.now()
    assert wait_until("guests progress", lambda: progressing(host, pairs(guests), t, 2), 10)


def test_teardown_leaves_no_process_even_with_a_domain_stopped(
    booted: tuple[SimHost, tuple[GuestSpec, ...]],
) -> None:
    host, _ = booted
    mine = [p for p in sim_processes() if p.environ().get("WINDSOR_SIM_HOST") == host.run_dir]
    assert len(mine) >= 13  # manager, dom0, 5 service domains, 2 device models, 6 guests
    host.pause(host.locate("netback"))  # never resumed: shutdown must still clean up
    host.shutdown()
    assert [p for p in sim_processes() if p in mine] == []
