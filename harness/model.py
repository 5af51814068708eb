"""Roles, devices and guests: the vocabulary of docs/design.md as data."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import UsageError

ROLES = ("toolstack", "xenstore", "netback", "blkback", "device-model", "console")
KERNEL_ROLES = frozenset({"netback", "blkback"})
DEVICES = ("net", "disk", "emul", "console", "heartbeat")
XENBUS_DEVICE = {"vif": "net", "vbd": "disk", "qdisk": "disk", "console": "console", "dm": "emul"}  # kind → device
ROLE_DEVICE = {"netback": "net", "blkback": "disk", "device-model": "emul", "console": "console"}
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")

Pair = tuple[str, str]  # (guest, device)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"bad {kind} name {name!r}: use 1-31 lowercase letters, digits or '-', starting with a letter"
        )
    return name


@dataclass(frozen=True)
class GuestSpec:
    name: str
    hvm: bool
    net: bool
    disk: bool
    index: int
    console: bool = True  # a console workload

    @property
    def devices(self) -> tuple[str, ...]:
        chosen = (self.net, self.disk, self.hvm, self.console, True)
        return tuple(d for d, on in zip(DEVICES, chosen, strict=True) if on)

    @property
    def mac(self) -> str:
        return f"00:16:3e:00:{self.index // 256:02x}:{self.index % 256:02x}"


# (hvm, net, disk): a mix of device sets, so that containment means something
PROFILES = ((False, True, False), (False, False, True), (True, True, False),
            (False, True, True), (False, False, False), (True, False, True))


MAX_GUESTS = 1000  # a sim:// host boots 500 in ≈ 10 s here (windsor bench)


def fleet(count: int, seed: int) -> tuple[GuestSpec, ...]:
    """`count` guests; g01 is always HVM with net and disk, the rest rotate through PROFILES."""
    if not 1 <= count <= MAX_GUESTS:
        raise UsageError(f"--guests {count}: use 1 to {MAX_GUESTS} guests")
    guests = [GuestSpec("g01", True, True, True, 1)]
    for i in range(1, count):
        hvm, net, disk = PROFILES[(i - 1 + seed) % len(PROFILES)]
        guests.append(GuestSpec(f"g{i + 1:02d}", hvm, net, disk, i + 1))
    return tuple(guests)


def peers(guests: Iterable[GuestSpec]) -> dict[str, str]:
    """Each net guest's echo peer: the next net guest, in a ring (itself if alone)."""
    net = [g for g in guests if g.net]
    return {g.name: net[(i + 1) % len(net)].mac for i, g in enumerate(net)}


def pairs(guests: Iterable[GuestSpec]) -> frozenset[Pair]:
    return frozenset((g.name, d) for g in guests for d in g.devices)
