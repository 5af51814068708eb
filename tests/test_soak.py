"""Many faults in a row on one host, through the fault plugins: after every one the role is
healthy and every guest device progresses again, and at the end no acknowledged write is lost.
(This found a lost-acknowledgement race in the xenbus handshake when xenstored died mid-write.)"""

import random

import pytest

from harness.backend.sim import SimHost
from harness.fault import get_fault
from harness.model import ROLES, GuestSpec, pairs
from harness.runner import progressing
from harness.waiting import wait_until


@pytest.mark.parametrize("seed", [1, 2])
def test_random_faults_back_to_back(booted: tuple[SimHost, tuple[GuestSpec, ...]], seed: int) -> None:
    host, guests = booted
    rng = random.Random(seed)
    hvm = [g.name for g in guests if g.hvm]
    for i in range(15):
        role, name = rng.choice(ROLES), rng.choice(["kill", "stall", "throttle"])
        guest = rng.choice(hvm) if role == "device-model" else None
        fault_cls = get_fault(name)
        params = fault_cls.parse_params({"duration_s": f"{rng.uniform(0.01, 0.3):.3f}"} if name != "kill" else {})
        fault = fault_cls(host, host.locate(role, guest), params)
        try:
            fault.inject()
            fault.hold()
        finally:
            fault.revert()
        what = f"#{i} {name} {role} {guest or ''}"
        assert wait_until(f"{what}: healthy", lambda r=role, g=guest: host.health(r, g).ok, 10), what
        t = host.now()
        assert wait_until(f"{what}: progress", lambda t=t: progressing(host, pairs(guests), t, 2), 10), what
    assert host.acked_writes_lost() == 0
