"""Host URLs → backend classes (imported lazily, as pytest-testinfra does)."""

from __future__ import annotations

import importlib
import urllib.parse

from harness.backend.base import Host, HostSpec
from harness.errors import UsageError

BACKENDS = {
    "sim": "harness.backend.sim.SimHost",
    "xen+ssh": "harness.backend.xen.XenHost",
    "xen+local": "harness.backend.xen.XenHost",
    "lab": "harness.backend.lab.LabHost",
}


def parse_hostspec(url: str) -> HostSpec:
    if "://" not in url:
        raise UsageError(f"bad host URL {url!r}: write scheme://..., e.g. sim://")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in BACKENDS:
        raise UsageError(
            f"unknown host scheme {parsed.scheme!r} in {url!r}: use one of {', '.join(s + '://' for s in BACKENDS)}"
        )
    try:
        port = parsed.port
    except ValueError:
        raise UsageError(f"bad port in host URL {url!r}") from None
    params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
    return HostSpec(url, parsed.scheme, parsed.username, parsed.hostname, port, params)


def host_class(url: str) -> type[Host]:
    spec = parse_hostspec(url)
    module, cls = BACKENDS[spec.scheme].rsplit(".", 1)
    found: type[Host] = getattr(importlib.import_module(module), cls)
    return found


def get_host(url: str) -> Host:
    return host_class(url)(parse_hostspec(url))


__all__ = ["BACKENDS", "Host", "HostSpec", "get_host", "host_class", "parse_hostspec"]
