"""Topologies are data files: which domain hosts which role.

A TOML file has ``name``, ``description``, ``device_model`` (``dom0``: one QEMU process per HVM
guest in dom0; ``stubdom``: one stub domain ``<guest>-dm`` per HVM guest, named as libxl names it), ``cpu_pct``
(the CPU budget of dom0 and of every service domain alike, in % of one CPU; default 100) and
``[[domain]]`` tables with ``name``, ``roles`` and ``shards``. A role that no domain names lives in
dom0. ``shards`` spreads a domain over several by guest: ``shards = N`` makes ``NAME1`` … ``NAMEN``,
each serving a contiguous block of the guests in the order they are created (of G guests, guest i
counted from 0 by shard ⌊i·N/G⌋ + 1: echo neighbours mostly share one); ``shards = "guest"``
one per guest, ``NAME-GUEST`` (a tenant's own driver domain). Which guests a sharded domain serves
is known once the topology is bound to its guests (`Topology.bind`); unbound, or asked without a
guest (a fault on the role as a whole), a sharded role is its first shard. Built-in files are in
harness/topologies/; ``--topology`` also takes a path to a file of your own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.model import KERNEL_ROLES, ROLES, check_name, check_role

BUILTIN = Path(__file__).parent / "topologies"
STUB_SUFFIX = "-dm"
PER_GUEST = 0  # shards = "guest"
MAX_SHARDS = 64


def stub_domain(guest: str) -> str:
    """The device-model stub domain of an HVM guest, named as libxl names it (``g01-dm``)."""
    return guest + STUB_SUFFIX


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    device_model: str  # "dom0" | "stubdom"
    placement: tuple[tuple[str, str], ...]  # (role, domain) for every role but device-model
    shards: tuple[tuple[str, int], ...] = ()  # (domain, N shards; PER_GUEST: one per guest)
    cpu_pct: int = 100  # dom0's and every service domain's CPU budget, % of one CPU
    guests: tuple[str, ...] = ()  # the guests, in creation order, once bound (`bind`)

    def bind(self, guests: tuple[str, ...]) -> Topology:
        """This topology for these guests: which shard serves each is known."""
        return replace(self, guests=tuple(guests))

    def _shard(self, base: str, guest: str | None) -> str:
        n = dict(self.shards).get(base)
        if n is None:
            return base
        if guest is None or guest not in self.guests:
            guest = self.guests[0] if self.guests else guest
        if n == PER_GUEST:
            return f"{base}-{guest}" if guest else f"{base}-<guest>"
        at = self.guests.index(guest) if guest in self.guests else 0
        return f"{base}{at * n // max(1, len(self.guests)) + 1}"

    def domain_of(self, role: str, guest: str | None = None) -> str:
        if role == "device-model":
            return stub_domain(guest or "") if self.device_model == "stubdom" else "dom0"
        return self._shard(dict(self.placement)[role], guest)

    def domains(self) -> tuple[tuple[str, tuple[str, ...], tuple[str, ...] | None], ...]:
        """Every service domain as (name, roles, the guests it serves or None: all of them)."""
        out: list[tuple[str, tuple[str, ...], tuple[str, ...] | None]] = []
        for base in sorted({d for _, d in self.placement if d != "dom0"}):
            roles = tuple(sorted(r for r, d in self.placement if d == base))
            n = dict(self.shards).get(base)
            if n is None:
                out.append((base, roles, None))
                continue
            served: dict[str, list[str]] = {}
            for guest in self.guests:
                served.setdefault(self._shard(base, guest), []).append(guest)
            names = list(served) if n == PER_GUEST else [f"{base}{i + 1}" for i in range(n)]
            out += [(name, roles, tuple(served.get(name, []))) for name in names]
        return tuple(out)

    def roles_in(self, domain: str) -> frozenset[str]:
        roles = {r for name, rs, _ in self.domains() if name == domain for r in rs}
        roles |= {r for r, d in self.placement if d == domain}
        if (domain == "dom0" and self.device_model == "dom0") or domain.endswith(STUB_SUFFIX):
            roles.add("device-model")
        return frozenset(roles)

    def in_dom0_kernel(self, role: str) -> bool:
        return role in KERNEL_ROLES and self.domain_of(role) == "dom0"

    def service_domains(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple((name, roles) for name, roles, _ in self.domains())

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "device_model": self.device_model, "cpu_pct": self.cpu_pct,
            "domains": [{"name": n, "roles": list(r), **({"guests": list(g)} if g is not None else {})}
                        for n, r, g in self.domains()],
        }


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN.glob("*.toml"))


def load_topology(name_or_path: str) -> Topology:
    path = Path(name_or_path)
    if not path.suffix:
        path = BUILTIN / f"{name_or_path}.toml"
        if not path.is_file():
            raise UsageError(
                f"unknown topology {name_or_path!r}: use one of {', '.join(builtin_names())} or a .toml path"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"topology file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise UsageError(f"topology file {str(path)!r} is not valid TOML: {exc}") from None
    return parse_topology(data, str(path))


def parse_topology(data: dict[str, Any], where: str) -> Topology:
    name = data.get("name")
    if not isinstance(name, str):
        raise UsageError(f"{where}: needs name = \"...\"")
    check_name("topology", name)
    device_model = data.get("device_model", "dom0")
    if device_model not in ("dom0", "stubdom"):
        raise UsageError(f"{where}: device_model must be \"dom0\" or \"stubdom\", not {device_model!r}")
    domains = data.get("domain", [])
    if not isinstance(domains, list):
        raise UsageError(f"{where}: [[domain]] must be a list of tables")
    cpu_pct = data.get("cpu_pct", 100)
    if not isinstance(cpu_pct, int) or isinstance(cpu_pct, bool) or not 1 <= cpu_pct <= 100:
        raise UsageError(f"{where}: cpu_pct must be a whole percent of one CPU, 1 to 100, not {cpu_pct!r}")
    placement: dict[str, str] = {}
    shards: dict[str, int] = {}
    for entry in domains:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise UsageError(f"{where}: every [[domain]] needs name = \"...\"")
        dom = check_name("domain", entry["name"])
        if dom.endswith(STUB_SUFFIX):
            raise UsageError(f"{where}: domain names ending '{STUB_SUFFIX}' are kept for device-model stub domains")
        roles = entry.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise UsageError(f"{where}: domain {dom!r}: roles must be a list of role names")
        for role in roles:
            check_role(role)
            if role == "device-model":
                raise UsageError(f"{where}: place device models with device_model = \"dom0\"|\"stubdom\"")
            if role in placement:
                raise UsageError(f"{where}: role {role!r} is placed twice ({placement[role]}, {dom})")
            placement[role] = dom
        if "shards" in entry:
            shards[dom] = _shards(entry["shards"], f"{where}: domain {dom!r}")
    full = tuple((r, placement.get(r, "dom0")) for r in ROLES if r != "device-model")
    return Topology(name, str(data.get("description", "")), device_model, full, tuple(sorted(shards.items())), cpu_pct)


def _shards(value: Any, where: str) -> int:
    if value == "guest":
        return PER_GUEST
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SHARDS:
        raise UsageError(f"{where}: shards must be \"guest\" or a number of domains, 1 to {MAX_SHARDS}, not {value!r}")
    return value
