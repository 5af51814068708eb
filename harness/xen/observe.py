"""What `XenHost` (harness/backend/xen.py) observes on a Xen host: the guests' records (their
completion times and latencies, harness/xen/records.py), the domains' CPU time against the
topology's budget, the split drivers' state changes and the acknowledged writes on the disks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from harness.backend.base import DeviceState, HostSpec
from harness.errors import HostError
from harness.model import Pair
from harness.topology import Topology
from harness.xen import domains
from harness.xen.payload import STATE
from harness.xen.plan import Plan
from harness.xen.records import Records
from harness.xen.remote import Remote, q

log = logging.getLogger("windsor.xen")
DISK_SLOTS = 8192  # the disk workload's blocks (guest-init.sh: wrec disk 8192 ...)


class _Xen(Protocol):
    @property
    def remote(self) -> Remote: ...
    @property
    def spec(self) -> HostSpec: ...
    @property
    def records(self) -> Records: ...
    @property
    def plan(self) -> Plan | None: ...
    @property
    def topology(self) -> Topology | None: ...


class Observation:
    """`Host.progress`, `latencies`, `cpu_busy`, `device_states` and `acked_writes_lost` for `XenHost`."""

    def progress(self: _Xen) -> Mapping[Pair, list[float]]:
        try:
            res = self.remote.host.run(f"timeout 20 sh -c {q(self.records.command())}")
            self.records.feed(res.stdout_bytes)
        except Exception as exc:  # a host that is down (rebooting) shows no progress
            log.debug("%s: no records this time: %s", self.spec.url, exc)
        return self.records.times

    def latencies(self: _Xen) -> Mapping[Pair, list[tuple[float, float]]]:
        Observation.progress(self)
        return self.records.latency

    def cpu_busy(self: _Xen) -> Mapping[str, float]:
        """dom0's and the driver domains' CPU time (xl list) in seconds of the topology's budget."""
        if self.plan is None or self.topology is None:
            raise HostError(f"{self.spec.url}: no topology booted")
        share = self.topology.cpu_pct / 100
        return {n: s / share for n, s in domains.cpu_seconds(self.remote, ("dom0", *self.plan.services)).items()}

    def device_states(self: _Xen) -> list[DeviceState]:
        done = self.remote.run(f"cat {STATE}/xs-states.log", timeout=30)
        return DeviceState.parse(done.out) if done.ok else []

    def acked_writes_lost(self: _Xen) -> int:
        lost = 0
        for guest in sorted(self.records.acked):
            out = self.remote.check(f"grep -a -o 'W [0-9]*' {q(f'{STATE}/disks/{guest}.img')} || true", timeout=60)
            on_disk = [int(w.split()[1]) for w in out.splitlines() if len(w.split()) == 2]
            missing = self.records.lost(guest, on_disk, DISK_SLOTS)
            if missing:
                log.warning("%s: %s lost %d acknowledged writes", self.spec.url, guest, missing)
            lost += missing
        return lost
