"""Each kind of `Change` (harness/change.py) on a Xen host, as two shell commands for its control
domain: the one that applies it, and the one that undoes it — which ``windsor-lease`` journals
before the first runs, and runs by itself at the lease's end if the harness has not (the undo
must be harmless when the domain is gone or was rebuilt, and when run twice).

A pause or a cap of dom0 itself is not here: dom0 cannot be paused, and a capped dom0 may not
run the undo in time, so `XenHost` gives it to ``wstall``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from harness.change import Change
from harness.errors import HostError
from harness.lease import Owner
from harness.waiting import wait_until
from harness.xen import daemons
from harness.xen.payload import STATE, tool
from harness.xen.remote import Remote, q

log = logging.getLogger("windsor.xen")


def commands(change: Change, remote: Remote, domains: Callable[[], dict[str, str]]) -> tuple[str, str]:
    """(undo, apply) for `change`; `domains()` gives the running domains' ids by name."""
    if change.process is not None:  # a process of dom0: a daemon or a device model (harness/xen/daemons.py)
        role = daemons.role_of(change.process)
        if role is None or change.kind != "pause":
            raise HostError(f"Xen hosts cannot apply {change.describe()}")
        return daemons.pause(role, change.guest)
    dom = q(change.domain) if change.domain != "dom0" else "0"
    gone = f"xl domid {dom} >/dev/null 2>&1 || exit 0; "
    if change.kind == "pause":
        return gone + f"xl unpause {dom}", f"xl pause {dom}"
    if change.kind == "cap":  # undone to the cap it had (a topology's CPU budget, harness/xen/plan.py), not to none
        cap = int(change.args["cap_pct"])
        had = remote.check(f"xl sched-credit2 -d {dom} | awk 'NR == 2 {{ print $4 }}'", timeout=30).strip()
        if not had.isdigit():
            raise HostError(f"cap: no credit2 cap to read for {change.domain!r} (is it running, under credit2?)")
        return gone + f"xl sched-credit2 -d {dom} -c {had}", f"xl sched-credit2 -d {dom} -c {cap}"
    if change.kind == "memory":  # the domain's balloon driver gives memory back to Xen, down to the target
        pct = int(change.args["memory_pct"])
        have = int(remote.check(f"xl list {dom} | awk 'NR == 2 {{ print $3 }}'", timeout=30).strip())
        return gone + f"xl mem-set {dom} {have}m", f"xl mem-set {dom} {max(16, have * pct // 100)}m"
    if change.kind == "link-down":
        return link_down(change, domains())
    if change.kind == "disk-error":
        return disk_error(change, domains())
    if change.kind in ("xenstore-storm", "flood"):
        # the guest's wrec storms while its data/windsor-storm is there, floods the device its
        # data/windsor-flood names while that is there (harness/lab/files/wrec.c)
        doms = domains()
        if change.guest not in doms:
            raise HostError(f"{change.kind}: guest {change.guest!r} is not running")
        guest = doms[change.guest]
        node, value = ((f"/local/domain/{guest}/data/windsor-storm", "1") if change.kind == "xenstore-storm" else
                       (f"/local/domain/{guest}/data/windsor-flood", q(change.args["device"])))
        undo = f"xenstore-rm {node} 2>/dev/null; true"
        return undo, f"xenstore-write {node} {value} && xenstore-chmod {node} n{guest}"
    raise HostError(f"Xen hosts cannot apply {change.describe()}")


def uncap_dom0(remote: Remote, url: str, wait_s: float) -> float:
    """End a dom0 cap now: stop wstall's window early if it still runs (a capped dom0 may not even
    answer ssh: wstall undoes the cap anyway); the host time the cap was gone."""
    def uncapped() -> bool:
        try:
            return "uncapped" in remote.run(f"pkill -TERM -x wstall; cat {STATE}/wstall.out", timeout=30).out
        except HostError:
            return False

    if not wait_until("dom0's CPU cap undone", uncapped, wait_s):
        raise HostError(f"{url}: dom0 still capped (wstall); run: xl sched-credit2 -d 0 -c 0")
    said = remote.run(f"cat {STATE}/wstall.out").out.split()
    log.info("%s: dom0 capped at %s, uncapped at %s", url, said[1], said[-1])
    return float(said[-1])


def link_down(change: Change, doms: dict[str, str]) -> tuple[str, str]:
    """A partition: the guest's vif (``vifDOMID.0``; every vif without a guest) down where netback
    runs. In dom0 by ``ip link``; in a driver domain by its link keeper (dd-init.sh), which sets
    down the vifs dom0 lists under its ``data/windsor-link`` (``vif7-0`` for vif7.0)."""
    if change.guest is not None and change.guest not in doms:
        raise HostError(f"link-down: guest {change.guest!r} is not running")
    vif = "all" if change.guest is None else f"vif{doms[change.guest]}.0"
    if change.domain == "dom0":
        each = ("for v in $(ls /sys/class/net | grep '^vif'); do ip link set $v {}; done" if vif == "all"
                else f"ip link set {vif} {{}}")
        return f"{each.format('up')}; true", each.format("down")
    vif = vif.replace(".", "-")  # a xenstore name has no dots: the link keeper reads vif7-0 as vif7.0
    if change.domain not in doms:
        raise HostError(f"link-down: {change.domain!r} is not running")
    dd = doms[change.domain]
    node = f"/local/domain/{dd}/data/windsor-link/{vif}"
    return f"xenstore-rm {node} 2>/dev/null; true", f"xenstore-write {node} down && xenstore-chmod {node} n{dd}"


def disk_error(change: Change, doms: dict[str, str]) -> tuple[str, str]:
    """The guest's disk fails every request: its device-mapper device ``windsor-GUEST`` (plan.py)
    gets dm's ``error`` table, and its own back. In dom0 by ``dmsetup``; in a block driver domain
    by its disk keeper (dd-init.sh), which does the same for the guests dom0 lists under its
    ``data/windsor-disk``."""
    if change.guest is None:
        raise HostError("disk-error: which guest's disk?")
    if change.domain == "dom0":
        dev, own = f"windsor-{change.guest}", f"{STATE}/disks/{change.guest}.table"
        swap = ("export DM_DISABLE_UDEV=1; dmsetup suspend {0} && "  # resumed whatever the load did
                "{{ dmsetup load {0} --table {1}; r=$?; dmsetup resume {0} && [ $r = 0 ]; }}")
        there = (f"dmsetup info {dev} >/dev/null 2>&1 || {{ echo 'disk-error: no device-mapper device {dev} "
                 f"(windsor-topo makes one when dom0 has dmsetup: apt install dmsetup)' >&2; exit 1; }}")
        return (f"dmsetup info {dev} >/dev/null 2>&1 || exit 0; " + swap.format(dev, f'"$(cat {own})"'),
                f"({there}; " + swap.format(dev, f'"0 $(cut -d\" \" -f2 {own}) error"') + ")")
    if change.domain not in doms:
        raise HostError(f"disk-error: {change.domain!r} is not running")
    dd = doms[change.domain]
    node = f"/local/domain/{dd}/data/windsor-disk/{change.guest}"
    return f"xenstore-rm {node} 2>/dev/null; true", f"xenstore-write {node} error && xenstore-chmod {node} n{dd}"


def recover(remote: Remote) -> list[str]:
    """Revert what runs that are gone left in the control domain's lease journal (windsor-lease);
    one line per lease. Leases of live runs are left alone."""
    said = []
    out = remote.check(f"{tool('windsor-lease')} list; date +%s.%N", timeout=30).splitlines()
    now = float(out[-1])
    for line in out[:-1]:
        words = line.split()
        try:
            lease_id, expires_text, owner_word, fault, target = words
            expires = float(expires_text)
        except ValueError:
            said.append(f"left a damaged lease journal entry alone ({line.strip()[:120]!r}): "
                        "see /var/lib/windsor/state/leases on the host")
            continue
        try:
            owner = Owner.parse(owner_word)
        except ValueError:
            owner = None
        alive = owner.alive() if owner is not None else False
        if alive or (alive is None and expires > now):
            said.append(f"left {fault} of {target} (lease {lease_id}) alone: {owner} holds it "
                        f"for {expires - now:.0f}s more")
            continue
        ended = remote.run(f"{tool('windsor-lease')} end {q(lease_id)} recovery", timeout=60).out.split()
        how = "reverted" if ended[-1:] == ["rc=0"] else "could not revert (see leases.log on the host)"
        said.append(f"{how} {fault} of {target} (lease {lease_id}) left by {owner}, which is gone")
    return said
