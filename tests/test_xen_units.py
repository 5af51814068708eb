"""The Xen backend's pieces that need no Xen: console records, the topology plan, the inventory,
and quoting of what reaches the control domain's shell (run for real through testinfra's local
backend)."""

import dataclasses
import re
from pathlib import Path

import pytest
from helpers import REPO

from harness.errors import UsageError
from harness.model import fleet
from harness.topology import load_topology
from harness.waiting import wait_until
from harness.xen.inventory import load_inventory
from harness.xen.plan import make_plan, xen_guests
from harness.xen.records import MARK, Records
from harness.xen.remote import Remote, q


def answer(guest: str, size: int, body: bytes) -> bytes:
    return f"{MARK} {guest} {size}\n".encode() + body


def test_records_survive_console_chunking_and_split_polls() -> None:
    rec = Records(("g01", "g02"))
    first = b"[2026-11-23 22:18:17] WREC 100.000000001 disk 0[2026-11-23 22:18:17] \n[2026-11-23 22:1"
    second = b"8:18] WREC 100.500000000 disk 12\nWREC 100.6000000"
    rec.feed(answer("g01", len(first), first) + answer("g02", 0, b""))
    rec.feed(answer("g01", len(first) + len(second), second))
    assert rec.times[("g01", "disk")] == [100.000000001, 100.5]
    assert rec.acked["g01"] == {0, 12}
    third = b"00 heartbeat 3\n"
    rec.feed(answer("g01", len(first) + len(second) + len(third), third))
    assert rec.times[("g01", "heartbeat")] == [100.6]


def test_records_restart_on_a_new_log_and_ignore_a_cut_answer() -> None:
    rec = Records(("g01",))
    body = b"WREC 5.000000000 net 1\n"
    rec.feed(answer("g01", len(body), body))
    rec.feed(answer("g01", 100, b"WREC 6.0"))  # cut off: nothing taken, offset kept
    assert rec.offsets["g01"] == len(body)
    rec.feed(answer("g01", 3, b"abc"))  # smaller: the guest was created again
    assert rec.offsets["g01"] == 0
    again = b"WREC 7.000000000 net 1\n"
    rec.feed(answer("g01", len(again), again))
    assert rec.times[("g01", "net")] == [5.0, 7.0]


def test_a_record_may_carry_its_latency() -> None:
    """wrec's optional fourth field (the operation's seconds) goes to the latencies, and a line
    without it is a completion as before."""
    rec = Records(("g01",))
    body = b"WREC 5.000000000 disk 1 0.004200\nWREC 6.000000000 disk 2\nWREC 7.000000000 disk 3 x\n"
    rec.feed(answer("g01", len(body), body))
    assert rec.times[("g01", "disk")] == [5.0, 6.0]  # a malformed line is no record
    assert rec.latency[("g01", "disk")] == [(5.0, 0.0042)]


def test_a_boot_record_says_the_guest_init_ran_and_is_no_operation() -> None:
    """`boot` waits for every guest's boot record (an HVM boot under TCG takes minutes): it is
    counted per guest, each boot again, and never taken for a device's progress."""
    rec = Records(("g01", "g02"))
    body = b"WREC 5.000000000 boot 0\nWREC 5.100000000 heartbeat 0\n"
    rec.feed(answer("g01", len(body), body) + answer("g02", 0, b""))
    assert rec.booted == {"g01": 1} and set(rec.times) == {("g01", "heartbeat")}
    again = b"WREC 9.000000000 boot 0\n"
    rec.feed(answer("g01", len(body) + len(again), again))
    assert rec.booted == {"g01": 2}


def test_lost_writes_are_counted_against_the_disk() -> None:
    rec = Records(("g01",))
    rec.acked["g01"] = {1, 2, 3, 4}
    assert rec.lost("g01", [1, 2, 3, 4, 5]) == 0
    assert rec.lost("g01", [1, 3]) == 2
    assert rec.lost("g01", [3, 4], slots=2) == 0  # 1 and 2 were overwritten by design
    assert rec.lost("g01", [4], slots=2) == 1


def test_disaggregated_plan_puts_backends_in_driver_domains() -> None:
    guests = xen_guests(fleet(4, 0), has_qemu=True)
    plan = make_plan(load_topology("disaggregated"), guests, 0.25)
    assert plan.services == {"blkdd": ("blkback",), "netdd": ("netback",)}
    netdd = plan.files["auto/11-netdd.cfg"]
    assert 'on_crash = "restart"' in netdd and "driver_domain = 1" in netdd and "windsor.roles=net" in netdd
    # g01, the one HVM guest: its emulated disk only, its QEMU in libxl's stub domain g01-dm (our
    # stub image), not in dom0; g04 (HVM on sim) is PV here
    assert [g.name for g in guests if g.hvm] == ["g01"] and guests[0].devices == ("emul", "console", "heartbeat")
    hvm = plan.files["auto/51-g01.cfg"]
    assert 'type = "hvm"' in hvm and "/emul/g01.img" in hvm and "windsor.emul=sda" in hvm and "backend=" not in hvm
    assert "device_model_stubdomain_override = 1" in hvm and "/images/stub.cpio" in hvm and "serial" not in hvm
    mono = make_plan(load_topology("monolithic"), guests, 0.25).files["auto/51-g01.cfg"]
    assert "stubdomain" not in mono and 'serial = "pty"' in mono  # QEMU in dom0
    assert 'type = "pv"' in plan.files["auto/54-g04.cfg"]
    guests = xen_guests(fleet(4, 0), has_qemu=False)  # a host without QEMU: every guest PV, as sim's devices
    assert not any(g.hvm for g in guests) and guests[0].net and guests[0].disk
    plan = make_plan(load_topology("disaggregated"), guests, 0.25)
    g01 = plan.files["auto/51-g01.cfg"]
    assert "backend=netdd" in g01 and "backend=blkdd" in g01 and "windsor.cadence=250" in g01
    assert plan.files["attach/g01"].splitlines()[0].startswith("net netdd ")
    blkdd = plan.files["auto/10-blkdd.cfg"]
    disk_guests = [g.name for g in guests if g.disk]  # in blkdd's xvdb, xvdc... order: windsor-GUEST over each
    assert "/disks/g01.img" in blkdd and f"windsor.disks={','.join(disk_guests)} " in blkdd
    assert "target=/dev/mapper/windsor-g01" in g01


def test_monolithic_plan_keeps_backends_in_dom0() -> None:
    plan = make_plan(load_topology("monolithic"), xen_guests(fleet(3, 0), has_qemu=False), 0.5)
    assert plan.services == {}
    assert not any(name.startswith(("service/", "auto/1")) for name in plan.files)
    assert "backend=" not in plan.files["auto/51-g01.cfg"]
    assert "target=/var/lib/windsor/state/disks/g01.dev" in plan.files["auto/51-g01.cfg"]  # windsor-topo's


def test_a_tenant_gets_its_own_driver_domains_and_every_domain_the_budget() -> None:
    """per-tenant: a netdd and a blkdd for each guest that uses the device (none for one that
    does not), each guest's devices on its own; its echo peer its own bridge's address (no link
    joins two driver domains' bridges). A budget caps every driver domain in its cfg (kept across
    restarts) and dom0 through windsor-topo (dom0-cap); two-netdds splits the guests in blocks."""
    guests = xen_guests(fleet(4, 0), has_qemu=False)
    net = {g.name for g in guests if g.net}
    disk = {g.name for g in guests if g.disk}
    topology = dataclasses.replace(load_topology("per-tenant"), cpu_pct=30)
    plan = make_plan(topology, guests, 1.0)
    assert plan.services == {**{f"netdd-{g}": ("netback",) for g in net}, **{f"blkdd-{g}": ("blkback",) for g in disk}}
    for g in guests:
        cfg = plan.files[f"auto/{50 + g.index:02d}-{g.name}.cfg"]
        assert ("backend=netdd-" + g.name in cfg) == g.net and ("backend=blkdd-" + g.name in cfg) == g.disk
        if g.net:
            assert re.search(r"windsor.peer=198.51.100.1\b", cfg)
    blkdd = next(v for k, v in plan.files.items() if k.endswith(f"-blkdd-{sorted(disk)[0]}.cfg"))
    assert f"/disks/{sorted(disk)[0]}.img,raw,xvdb,w" in blkdd and "cap = 30" in blkdd
    assert plan.files["dom0-cap"] == "30\n"
    assert "dom0-cap" not in make_plan(load_topology("per-tenant"), guests, 1.0).files  # 100 %: no budget
    two = make_plan(load_topology("two-netdds"), guests, 1.0)
    assert set(two.services) == {"blkdd", "netdd1", "netdd2"}
    served = {g.name: next(x for x in two.files[f"attach/{g.name}"].split() if x.startswith("netdd")) for g in guests
              if g.net}
    assert set(served.values()) == {"netdd1", "netdd2"}


def test_a_flood_record_stands_for_its_requests() -> None:
    """wrec's flood workers write "DEVICE-flood N" every 100 ms, N requests since their last: each
    request is one time, as on sim://, whatever order the workers' lines came in."""
    rec = Records(("g01",))
    body = b"WREC 5.200000000 disk-flood 3\nWREC 5.100000000 disk-flood 2\nWREC 5.300000000 disk-flood 0\n"
    rec.feed(answer("g01", len(body), body))
    assert rec.times[("g01", "disk-flood")] == [5.1, 5.1, 5.2, 5.2, 5.2]


def test_inventory(tmp_path: Path) -> None:
    good = tmp_path / "inv.toml"
    good.write_text('[[host]]\nurl = "xen+ssh://root@a"\ntest_host = true\n[host.roles]\nnetback = "netdd"\n')
    entry = load_inventory(str(good)).find("xen+ssh://root@a?identity=k")
    assert entry.test_host and entry.roles == {"netback": "netdd"}
    entry.check_topology({"netdd": ("netback",)})
    with pytest.raises(UsageError, match="inventory says netback runs in 'netdd'"):
        entry.check_topology({"drivers": ("netback",)})
    with pytest.raises(UsageError, match="is not in the inventory"):
        load_inventory(str(good)).find("xen+ssh://root@b")
    for text, fragment in (("[[host]\n", "not valid TOML"), ("x = 1\n", "at least one [[host]]"),
                           ('[[host]]\nurl = "u"\ntest_host = "yes"\n', "true or false"),
                           ('[[host]]\nurl = "u"\n[host.roles]\nnetbak = "d"\n', "unknown role"),
                           ('[[host]]\nurl = "u"\n[host.roles]\nnetback = "$(x)"\n', "bad domain name")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(UsageError, match=fragment.replace("[", r"\[").replace("$", r"\$")):
            load_inventory(str(bad))


@pytest.mark.parametrize("hostile", ["; touch {p}", "$(touch {p})", "`touch {p}`", "a\ntouch {p}", "' ; touch {p} '"])
def test_hostile_words_reach_the_shell_inert(hostile: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    word = hostile.format(p=marker)
    done = Remote("local://").run(f"printf %s {q(word)}", timeout=10)
    assert done.ok and done.out == word
    assert not marker.exists()


def test_remote_timeout_bounds_a_stuck_command() -> None:
    done = Remote("local://").run("exec tail -f /dev/null", timeout=0.5)
    assert done.rc == 124 and done.seconds < 5


LEASE = REPO / "harness" / "lab" / "files" / "windsor-lease"


def lease_cmd(state: Path, *words: str) -> str:
    return f"WINDSOR_STATE={q(str(state))} {q(str(LEASE))} " + " ".join(q(w) for w in words)


def test_windsor_lease_ends_by_itself_and_by_hand(tmp_path: Path) -> None:
    """The control domain's dead-man's switch, run for real here: a lease nobody ends is undone by
    its watchdog when it runs out; one the harness ends is undone at once, its watchdog gone."""
    remote = Remote("local://")
    undone, hostile = tmp_path / "undone", tmp_path / "pwned"
    assert remote.run(lease_cmd(tmp_path, "take", "w0000000000aa", "0.5", "m:1:2.00", "stall", "netdd",
                                f"touch {q(str(undone))}")).ok
    assert remote.check(lease_cmd(tmp_path, "list")).split()[::2] == ["w0000000000aa", "m:1:2.00", "netdd"]
    assert wait_until("the lease's watchdog to undo it and clear it",
                      lambda: undone.exists() and remote.check(lease_cmd(tmp_path, "list")) == "", 10)
    assert "end w0000000000aa by=lease rc=0" in (tmp_path / "leases.log").read_text()
    # ended by the harness: undone at once, the watchdog killed, ending again is harmless
    word = f"a;touch {hostile}"
    assert remote.run(lease_cmd(tmp_path, "take", "w0000000000bb", "60", "m:1:2.00", "stall", word,
                                f"touch {q(str(undone))}2")).ok
    assert remote.check(lease_cmd(tmp_path, "end", "w0000000000bb", "harness")).split()[-1] == "rc=0"
    assert (tmp_path / "undone2").exists() and not hostile.exists()
    assert remote.check(lease_cmd(tmp_path, "end", "w0000000000bb", "harness")).startswith("none ")
    watchers = remote.run("pgrep -f '[w]indsor-lease watch w0000000000bb'").out.split()
    assert watchers == []
    log = (tmp_path / "leases.log").read_text()
    assert f"end w0000000000bb by=harness rc=0 fault=stall target={word}" in log


@pytest.mark.parametrize("words, fragment", [
    (("take", "w;rm -rf /", "1", "o", "f", "t", "true"), "bad lease id"),
    (("take", "w0000000000cc", "-1", "o", "f", "t", "true"), "bad lease length"),
    (("take", "w0000000000cc", "1", "o", "f", "t", "a\nb"), "one line"),
    (("end", "$(reboot)", "harness"), "bad lease id"),
    (("frobnicate",), "usage"),
])
def test_windsor_lease_refuses_bad_input(words: tuple[str, ...], fragment: str, tmp_path: Path) -> None:
    done = Remote("local://").run(lease_cmd(tmp_path, *words))
    assert done.rc == 2 and fragment in done.err and not list(tmp_path.glob("leases/w*"))
