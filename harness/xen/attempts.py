"""Isolation attempts on a Xen host (harness/isolation.py): dom0 reads what they aim at from
xenstore, and each attempt runs `windsor-attempt` (wprobe: Xen's own libraries) in the attacker's
domain — in dom0 over ssh, in a driver domain through its attempt keeper (dd-init.sh: dom0 writes
``ID ACTION ARGS`` to its ``data/windsor-attempt``, it answers ``ID RESULT`` in
``data/windsor-attempt-out``). dom0 turns a target into what the tools take: a ring node into
the granting domain and its reference, a guest into its domid, its shared-info frame, its vif."""

from __future__ import annotations

import re
import secrets
import shlex
from typing import Protocol

from harness.backend.base import HostSpec
from harness.errors import HostError
from harness.isolation import Answer, Device, Layout
from harness.model import XENBUS_DEVICE
from harness.waiting import wait_until
from harness.xen.payload import tool
from harness.xen.remote import Remote

RINGS = {"vif": "tx-ring-ref", "vbd": "ring-ref"}  # the frontend node holding its ring's grant reference
LINE_RE = re.compile(r'^(/local/domain/\d+/[^ ]*) = "(.*)"$')
DM_RE = re.compile(r"^/local/domain/(\d+)/device-model/(\d+)/state$")  # QEMU's, in its stub domain or dom0
ANSWER_S = 30.0  # a driver domain's keeper answers within this (it wakes on a watch, or every 2 s)


def layout(remote: Remote, url: str, guests: tuple[str, ...]) -> Layout:
    """Every device of `guests`, from dom0's view of xenstore."""
    done = remote.run("xenstore-ls -f /local/domain", timeout=60)
    if not done.ok:
        raise HostError(f"{url}: xenstore-ls failed (rc {done.rc}): is xenstored running?")
    nodes = {m[1]: m[2] for m in map(LINE_RE.match, done.out.splitlines()) if m}
    names = {p.split("/")[3]: v for p, v in nodes.items() if p.count("/") == 4 and p.endswith("/name")}
    names["0"] = "dom0"  # "Domain-0" in xenstore: the harness's name for it everywhere
    ids = {name: domid for domid, name in names.items()}
    devices, private = [], {}
    for guest in guests:
        fe = ids.get(guest)
        if fe is None:
            continue
        private[guest] = f"/local/domain/{fe}/name"
        for kind, device in XENBUS_DEVICE.items():
            prefix = f"/local/domain/{fe}/device/{kind}/"
            for devid in sorted({p[len(prefix):].split("/")[0] for p in nodes if p.startswith(prefix)}):
                path = prefix + devid
                backend, be = nodes.get(f"{path}/backend", ""), nodes.get(f"{path}/backend-id", "")
                if backend and be in names:
                    devices.append(Device(guest, device, path, backend, names[be], RINGS.get(kind, "")))
    for dm in filter(None, map(DM_RE.match, sorted(nodes))):  # an HVM guest's device model: no grant
        if names.get(dm[2]) in guests and dm[1] in names:
            path = dm[0].rsplit("/", 1)[0]
            devices.append(Device(names[dm[2]], "emul", path, path, names[dm[1]], ""))
    return Layout(tuple(devices), private)


def attempt(remote: Remote, url: str, attacker: str, action: str, target: str, domids: dict[str, str]) -> Answer:
    args = arguments(remote, url, action, target, domids)
    if attacker == "dom0":
        done = remote.run(f"{tool('windsor-attempt')} {shlex.join(args)}", timeout=60)
        return answer(done.out.strip().splitlines()[-1] if done.out.strip() else "", done.err, url)
    domid = domids.get(attacker)
    if domid is None:
        raise HostError(f"{url}: no domain {attacker!r} to attack from")
    ident = secrets.token_hex(6)  # this request's, so an earlier answer is never taken for it
    base = f"/local/domain/{domid}/data/windsor-attempt"
    remote.check(f"xenstore-write {base} {shlex.quote(' '.join([ident, *args]))}", timeout=30)
    said: list[str] = []

    def answered() -> bool:
        out = remote.run(f"xenstore-read {base}-out", timeout=15).out.strip()
        if out.startswith(ident + " "):
            said.append(out[len(ident) + 1:])
        return bool(said)

    if not wait_until(f"{attacker}'s answer to {action} {target}", answered, ANSWER_S):
        raise HostError(f"{url}: {attacker} did not answer the attempt {action} {target} within {ANSWER_S:.0f}s "
                        "(its attempt keeper: dd-init.sh)")
    return answer(said[0], "", url)


def answer(line: str, err: str, url: str) -> Answer:
    verdict, _, detail = line.partition(" ")
    if verdict not in ("allowed", "denied"):
        raise HostError(f"{url}: the attempt could not be made: {line or err.strip() or 'no answer'}")
    return Answer(verdict == "allowed", detail)


def arguments(remote: Remote, url: str, action: str, target: str, domids: dict[str, str]) -> list[str]:
    """What windsor-attempt takes for `action` on `target`, read in dom0."""
    if action in ("xs-read", "grant-map", "xs-write"):
        value = remote.run(f"xenstore-read {shlex.quote(target)}", timeout=15)
        if not value.ok:
            raise HostError(f"{url}: no xenstore node {target} to aim {action} at")
        if action == "xs-read":
            return [action, target]
        if action == "xs-write":
            return [action, target, value.out.strip()]
        return [action, target.split("/")[3], value.out.strip()]
    guest = domids.get(target)
    if guest is None:
        raise HostError(f"{url}: no guest {target!r} to aim {action} at")
    if action == "foreign-map":
        return [action, guest, remote.check(f"{tool('wprobe')} frame {guest}", timeout=15).strip()]
    if action == "domctl-pause":
        return [action, guest]
    if action == "sniff":
        return [action, f"vif{guest}.0"]
    if action == "disk-read":
        return [action, target]
    raise HostError(f"unknown attempt {action!r}")


class _Xen(Protocol):
    @property
    def remote(self) -> Remote: ...
    @property
    def spec(self) -> HostSpec: ...
    @property
    def guest_names(self) -> tuple[str, ...]: ...
    def domains(self) -> dict[str, str]: ...


class Attempts:
    """`Host.layout` and `Host.attempt` for `XenHost` (harness/backend/xen.py)."""

    def layout(self: _Xen) -> Layout:
        return layout(self.remote, self.spec.url, self.guest_names)

    def attempt(self: _Xen, attacker: str, action: str, target: str) -> Answer:
        return attempt(self.remote, self.spec.url, attacker, action, target, self.domains())
