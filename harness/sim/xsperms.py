"""xenstore's permissions, as Xen's xenstored keeps them: each node has a list like ``["n5", "r3"]``
— the first entry names the node's owner and what every other domain may do, the others grant a
domain more (``r`` read, ``w`` write, ``b`` both, ``n`` none). The owner may do anything, and so may
a privileged connection (dom0's, the toolstack's: one that never said which domain it is).

A node without permissions of its own has its parent's (a new node inherits them). What libxl
sets when it creates a domain is the default here: ``/local/domain/N`` readable by N only (owned
by dom0), its ``data`` and ``device`` directories owned by N; everything else (``/``, ``/vm``,
``/local/domain/0``) dom0's, closed to the others. `harness/sim/xenbus.py`'s `attach` sets a
device's two directories as libxl does: the backend's owned by the backend domain and readable by
the frontend, the frontend's the other way round.
"""

from __future__ import annotations

import re
from typing import TypeGuard

DOMAIN_DIR = re.compile(r"^/local/domain/(\d+)(/data|/device)?$")
ROOT = ("n0",)


def valid(perms: object) -> TypeGuard[list[str]]:
    return (isinstance(perms, list) and bool(perms)
            and all(isinstance(p, str) and re.fullmatch(r"[nrwb]\d+", p) for p in perms))


def default(path: str) -> tuple[str, ...] | None:
    """What libxl gives a domain's directories when it creates the domain; None elsewhere."""
    found = DOMAIN_DIR.match(path)
    if found is None or found.group(1) == "0":
        return None
    domid = found.group(1)
    return (f"n{domid}",) if found.group(2) else ("n0", f"r{domid}")


def effective(explicit: dict[str, tuple[str, ...]], path: str) -> tuple[str, ...]:
    """The permissions that hold at `path`: its own, else the nearest ancestor's."""
    while True:
        own = explicit.get(path) or default(path)
        if own is not None:
            return own
        if path == "/":
            return ROOT
        path = path.rsplit("/", 1)[0] or "/"


def allows(perms: tuple[str, ...], domid: int | None, want: str) -> bool:
    """Whether domain `domid` (None: a privileged connection) may `want` ("r" or "w") the node."""
    if domid is None or domid == 0:
        return True
    owner = int(perms[0][1:])
    if owner == domid:
        return True
    granted = next((p[0] for p in perms[1:] if int(p[1:]) == domid), perms[0][0])
    return granted == "b" or granted == want


def inherited(parent: tuple[str, ...], creator: int | None) -> tuple[str, ...]:
    """A node a domain creates gets its parent's permissions, with the creator as its owner."""
    if creator is None or creator == 0:
        return parent
    return (f"{parent[0][0]}{creator}", *parent[1:])
