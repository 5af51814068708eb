"""The real-Xen lab: Xen 4.17 from Debian's packages booted under QEMU on this machine.
Marked `lab` (deselect with -m "not lab" where QEMU and root are not available)."""

from collections.abc import Iterator

import pytest

from harness.lab.machine import Lab
from harness.waiting import wait_until

pytestmark = pytest.mark.lab

GUEST_CFG = """name="smoke"
type="pv"
kernel="/var/lib/windsor/vmlinuz"
ramdisk="/var/lib/windsor/guest.cpio"
extra="console=hvc0 rdinit=/init quiet"
memory=128
vcpus=1
"""
LOG = "/var/log/xen/console/guest-smoke.log"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def records(lab: Lab) -> int:
    done = lab.ssh(f"grep -c 'WREC heartbeat' {LOG} || true")
    return int(done.stdout.strip() or 0)


def test_dom0_runs_on_real_xen(lab: Lab) -> None:
    info = lab.ssh("xl info")
    assert info.returncode == 0, info.stderr
    facts = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in info.stdout.splitlines() if ":" in line)}
    assert facts["xen_major"] == "4" and facts["xen_minor"] == "17"
    assert "pv" in facts["virt_caps"].split() and facts["xen_scheduler"] == "credit2"


def diagnose(lab: Lab) -> str:
    """What to look at when the guest does not behave: its state, its log, Xen's and dom0's."""
    cmd = f"xl list; tail -5 {LOG}; xl dmesg | tail -15; dmesg | tail -15; ps ax | grep [x]enconsoled"
    return lab.ssh(cmd, 60).stdout


def test_guest_records_reach_dom0_and_pause_stops_them(lab: Lab) -> None:
    made = lab.ssh(f"cat > /tmp/smoke.cfg <<'EOF'\n{GUEST_CFG}EOF\nxl create /tmp/smoke.cfg", 60)
    assert made.returncode == 0, made.stderr
    try:
        assert wait_until("guest records in xenconsoled's log", lambda: records(lab) >= 5, 120), diagnose(lab)
        assert lab.ssh("xl pause smoke").returncode == 0
        paused_at = records(lab)
        # a paused domain does not run: no record may appear (waiting for one must time out)
        assert not wait_until("a record while paused", lambda: records(lab) > paused_at + 1, 5)
        assert lab.ssh("xl unpause smoke").returncode == 0
        assert wait_until("records again after unpause", lambda: records(lab) > paused_at + 5, 30)
    finally:
        lab.ssh("xl destroy smoke")
    assert "smoke" not in lab.ssh("xl list").stdout
