"""What `XenHost` (harness/backend/xen.py) observes on a Xen host: the guests' records (their
completion times and latencies, harness/xen/records.py), the domains' CPU time against the
topology's budget, the split drivers' state changes and the acknowledged writes on the disks."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Protocol

from harness.backend.base import DeviceState, HostSpec
from harness.errors import HostError, NotSteady
from harness.model import Pair
from harness.topology import Topology
from harness.waiting import wait_until
from harness.xen import domains
from harness.xen.payload import STATE
from harness.xen.plan import Plan
from harness.xen.records import Records
from harness.xen.remote import Remote, q

log = logging.getLogger("windsor.xen")
DISK_SLOTS = 8192  # the disk workload's blocks (guest-init.sh: wrec disk 8192 ...)
# From `xl create` returning to a guest's init under TCG: PV ≈ 15 s; HVM 38–64 s with nothing else
# running, 120 s beside a topology booting (SeaBIOS's linuxboot.bin reads the kernel and initramfs
# through fw_cfg's I/O port, each read a round trip to the device model), more in a loaded CI run
BOOT_TIMEOUT_S = 120.0
HVM_BOOT_TIMEOUT_S = 420.0  # with an HVM guest in the fleet
BOOT_SHOWN_S = 30.0  # a line on the guests still booting this often


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
    @property
    def guest_names(self) -> tuple[str, ...]: ...
    @property
    def hvm_names(self) -> tuple[str, ...]: ...


class Observation:
    """`Host.progress`, `latencies`, `cpu_busy`, `device_states` and `acked_writes_lost` for `XenHost`."""

    def progress(self: _Xen) -> Mapping[Pair, list[float]]:
        try:
            res = self.remote.host.run(f"timeout 20 sh -c {q(self.records.command())}")
            self.records.feed(res.stdout_bytes)
        except Exception as exc:  # a host that is down (rebooting) shows no progress
            log.debug("%s: no records this time: %s", self.spec.url, exc)
        return self.records.times

    def wait_booted(self: _Xen) -> None:
        """Until every guest's init has run (its boot record), or NotSteady naming the guests that
        did not, with what Xen says of their domains (a changed id: xl restarted it)."""
        timeout = HVM_BOOT_TIMEOUT_S if self.hvm_names else BOOT_TIMEOUT_S
        created = domains.listed(self.remote, self.spec.url)
        shown = time.monotonic()

        def booting() -> list[str]:
            Observation.progress(self)
            return [g for g in self.guest_names if not self.records.booted.get(g)]

        def booted() -> bool:
            nonlocal shown
            left = booting()
            if left and time.monotonic() - shown >= BOOT_SHOWN_S:
                shown = time.monotonic()
                log.info("%s: still booting: %s", self.spec.url, Observation._domains(self, left, created))
            return not left

        if not wait_until(f"every guest's init on {self.spec.url} (HVM under TCG: minutes)", booted, timeout,
                          interval=2.0):
            raise NotSteady(f"{self.spec.url}: not booted within {timeout:.0f}s: "
                            f"{Observation._domains(self, booting(), created)}")

    def _domains(self: _Xen, names: list[str], created: Mapping[str, str]) -> str:
        """`names` as Xen runs them: kind, domain id (and the one created), state, CPU seconds."""
        try:
            rows = domains.xl_list(self.remote)
        except HostError as exc:
            return f"{', '.join(names)} (xl list: {exc})"
        said = []
        for g in names:
            kind = "HVM" if g in self.hvm_names else "PV"
            if g not in rows:
                said.append(f"{g} ({kind}, no domain)")
                continue
            domid, state, cpu = rows[g]
            again = f", created as {created[g]}: xl restarted it" if created.get(g, domid) != domid else ""
            said.append(f"{g} ({kind}, domain {domid}{again}, state {state}, {cpu:.1f} s of CPU)")
        return "; ".join(said)

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
