"""What runs on a Xen host, as the harness tells incarnations apart: the domains by name (from
xenstore: cheaper than `xl list` under TCG), or — with xenstored gone, when xenstore and `xl`
hang — the domain ids Xen itself still runs (``wstall list``: libxenctrl), and dom0's daemons by
pid."""

from __future__ import annotations

from harness.backend.base import Entity
from harness.errors import HostError
from harness.xen import daemons
from harness.xen.payload import tool
from harness.xen.remote import Remote


def listed(remote: Remote, url: str) -> dict[str, str]:
    """Running domains: name → domid, from xenstore; HostError if xenstore does not answer."""
    done = remote.run("l=$(timeout 10 xenstore-list /local/domain) || exit 1; "
                      "for d in $l; do echo $d $(timeout 5 xenstore-read /local/domain/$d/name); done", timeout=30)
    if not done.ok:
        raise HostError(f"{url}: xenstore does not list the domains (rc {done.rc})")
    found: dict[str, str] = {}
    for line in done.out.splitlines():
        words = line.split()
        if len(words) == 2 and (words[1] not in found or int(words[0]) > int(found[words[1]])):
            found[words[1]] = words[0]
    return found


def alive(remote: Remote, known: dict[str, str]) -> dict[str, str]:
    """Of the domains xenstore last listed (`known`), those whose id Xen still runs."""
    ids = set(remote.check(f"{tool('wstall')} list", timeout=30).split())
    return {name: domid for name, domid in known.items() if domid in ids}


def daemon_entities(remote: Remote, hvm: tuple[str, ...] = ()) -> list[Entity]:
    """dom0's daemons (``dom0/xenstored``, ``dom0/xenconsoled``) and the device models of the HVM
    guests `hvm` (``dom0/qemu-GUEST``), each by its pid."""
    asks = [(daemons.process(r), daemons.started(r)) for r in daemons.ROLES]
    asks += [(daemons.process(daemons.DEVICE_MODEL, g), daemons.started(daemons.DEVICE_MODEL, g)) for g in hvm]
    done = remote.run("; ".join(f"echo {name} $({cmd})" for name, cmd in asks), timeout=30)
    names = {name for name, _ in asks}
    return [Entity(f"dom0/{w[0]}", w[1]) for w in map(str.split, done.out.splitlines())
            if len(w) == 4 and w[0] in names]


def xl_list(remote: Remote) -> dict[str, tuple[str, str, float]]:
    """`xl list`: name → (domid, state, CPU seconds so far, all its vCPUs); dom0 is ``dom0``."""
    rows: dict[str, tuple[str, str, float]] = {}
    for line in remote.check("xl list", timeout=30).splitlines()[1:]:
        words = line.split()
        if len(words) >= 6:
            try:
                rows["dom0" if words[0] == "Domain-0" else words[0]] = (words[1], words[-2], float(words[-1]))
            except ValueError:
                continue
    return rows


def cpu_seconds(remote: Remote, names: tuple[str, ...]) -> dict[str, float]:
    """The CPU seconds each of the domains `names` ran so far; a domain not running is left out."""
    return {n: row[2] for n, row in xl_list(remote).items() if n in names}
