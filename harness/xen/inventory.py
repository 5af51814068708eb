"""The host inventory (TOML): which Xen hosts exist, whether each is a test host (destructive
faults only there, unless --allow-destructive), whether a fault may hit its dom0 (the monolithic
baseline crashes or caps dom0: only where ``dom0_faults = true``) and which domain plays which
role on it.

    [[host]]
    url = "xen+ssh://root@xen-runner-1"
    test_host = true
    dom0_faults = true
    [host.roles]
    netback = "netdd"
    blkback = "blkdd"

A host's url is ``xen+ssh://...``, ``xen+local://`` or ``sim://?dir=...`` (an embedded host, for
trying a fleet on one machine); each is listed once. ``--host inventory:FILE`` takes a free one
(harness/fleet.py).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import UsageError
from harness.model import check_name, check_role

SCHEMES = ("xen+ssh", "xen+local", "sim")


@dataclass(frozen=True)
class HostEntry:
    url: str
    test_host: bool
    roles: Mapping[str, str] = field(default_factory=dict)
    dom0_faults: bool = False

    def check_topology(self, services: Mapping[str, tuple[str, ...]]) -> None:
        """The planned driver domains must be where the inventory says the roles live."""
        for domain, roles in services.items():
            for role in roles:
                want = self.roles.get(role)
                if want is not None and want != domain:
                    raise UsageError(f"inventory says {role} runs in {want!r} on {self.url}, the topology puts it "
                                     f"in {domain!r}: fix the inventory or pick another --topology")


@dataclass(frozen=True)
class Inventory:
    path: str
    hosts: tuple[HostEntry, ...]

    def find(self, url: str) -> HostEntry:
        base = url.split("?", 1)[0]
        for entry in self.hosts:
            if entry.url.split("?", 1)[0] == base:
                return entry
        raise UsageError(f"{base!r} is not in the inventory {self.path!r}: add a [[host]] with url = \"{base}\"")


def load_inventory(path: str) -> Inventory:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"inventory {path!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"inventory {path!r} is not valid TOML: {exc}") from None
    hosts = data.get("host")
    if not isinstance(hosts, list) or not hosts:
        raise UsageError(f"inventory {path!r}: needs at least one [[host]] table")
    entries: list[HostEntry] = []
    for n, host in enumerate(hosts, 1):
        if not isinstance(host, dict) or not isinstance(host.get("url"), str):
            raise UsageError(f"inventory {path!r}: host {n} needs url = \"...\"")
        flags = {}
        for flag in ("test_host", "dom0_faults"):
            flags[flag] = host.get(flag, False)
            if not isinstance(flags[flag], bool):
                raise UsageError(f"inventory {path!r}: {host['url']}: {flag} must be true or false")
        unknown = set(host) - {"url", "test_host", "dom0_faults", "roles"}
        if unknown:
            raise UsageError(f"inventory {path!r}: {host['url']}: unknown keys {sorted(unknown)} "
                             "(a [[host]] has url, test_host, dom0_faults, [host.roles])")
        roles = host.get("roles", {})
        if not isinstance(roles, dict) or not all(isinstance(v, str) for v in roles.values()):
            raise UsageError(f"inventory {path!r}: {host['url']}: [host.roles] maps role names to domain names")
        for role, domain in roles.items():
            check_role(role)
            if domain != "dom0":
                check_name("domain", domain)
        if host["url"].split("://", 1)[0] not in SCHEMES or "://" not in host["url"]:
            raise UsageError(f"inventory {path!r}: host {n}: url {host['url']!r} is not xen+ssh://USER@HOST, "
                             "xen+local:// or sim://?dir=PATH")
        if any(e.url == host["url"] for e in entries):
            raise UsageError(f"inventory {path!r}: {host['url']} is listed twice")
        entries.append(HostEntry(host["url"], flags["test_host"], dict(roles), flags["dom0_faults"]))
    return Inventory(path, tuple(entries))
