"""Topologies are data files: which domain hosts which role.

A TOML file has ``name``, ``description``, ``device_model`` (``dom0``: one QEMU process per HVM
guest in dom0; ``stubdom``: one stub domain ``<guest>-dm`` per HVM guest, named as libxl names it) and ``[[domain]]``
tables with ``name`` and ``roles``. A role that no domain names lives in dom0. Built-in files
are in harness/topologies/; ``--topology`` also takes a path to a file of your own.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.model import KERNEL_ROLES, ROLES, check_name, check_role

BUILTIN = Path(__file__).parent / "topologies"
STUB_SUFFIX = "-dm"


def stub_domain(guest: str) -> str:
    """The device-model stub domain of an HVM guest, named as libxl names it (``g01-dm``)."""
    return guest + STUB_SUFFIX


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    device_model: str  # "dom0" | "stubdom"
    placement: tuple[tuple[str, str], ...]  # (role, domain) for every role but device-model

    def domain_of(self, role: str, guest: str | None = None) -> str:
        if role == "device-model":
            return stub_domain(guest or "") if self.device_model == "stubdom" else "dom0"
        return dict(self.placement)[role]

    def roles_in(self, domain: str) -> frozenset[str]:
        roles = {r for r, d in self.placement if d == domain}
        if (domain == "dom0" and self.device_model == "dom0") or domain.endswith(STUB_SUFFIX):
            roles.add("device-model")
        return frozenset(roles)

    def in_dom0_kernel(self, role: str) -> bool:
        return role in KERNEL_ROLES and self.domain_of(role) == "dom0"

    def service_domains(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        names = sorted({d for _, d in self.placement if d != "dom0"})
        return tuple((n, tuple(sorted(r for r, d in self.placement if d == n))) for n in names)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "device_model": self.device_model,
            "domains": [{"name": n, "roles": list(r)} for n, r in self.service_domains()],
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
    placement: dict[str, str] = {}
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
    full = tuple((r, placement.get(r, "dom0")) for r in ROLES if r != "device-model")
    return Topology(name, str(data.get("description", "")), device_model, full)
