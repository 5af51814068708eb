"""The real-Xen lab: Xen 4.17 from Debian's packages booted under QEMU on this machine.
Marked `lab` (deselect with -m "not lab" where QEMU and root are not available)."""

import itertools
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


CADENCE_S = 0.1  # wrec beat heartbeat 100 (harness/lab/files/guest-init.sh)


def heartbeats(lab: Lab) -> list[float]:
    """The guest's heartbeat record times (Xen's shared wallclock), as dom0's xenconsoled logged them."""
    done = lab.ssh(f"grep 'WREC [0-9.]* heartbeat' {LOG} || true")
    return [float(line.split()[3]) for line in done.stdout.splitlines() if len(line.split()) == 6]


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


def test_guest_records_measure_a_real_pause(lab: Lab) -> None:
    # -e: no xl monitoring child. Under TCG that forked child corrupted its heap in about 1 create
    # of 15 ("domain monitoring daemonizing child died"), and a guest needs no on_crash action here.
    made = lab.ssh(f"cat > /tmp/smoke.cfg <<'EOF'\n{GUEST_CFG}EOF\nxl create -e /tmp/smoke.cfg", 60)
    assert made.returncode == 0, made.stderr
    try:
        assert wait_until("guest records in xenconsoled's log", lambda: len(heartbeats(lab)) >= 5, 120), diagnose(lab)
        newest = heartbeats(lab)[-1]
        now = float(lab.ssh("date +%s.%N").stdout)
        # the newest record is at most a cadence plus the log's latency old; both clocks are Xen's
        assert -0.05 < now - newest < 2.0, f"guest and dom0 clocks disagree by {now - newest:+.3f}s"
        # pause for 1 s; dom0's clock brackets when the pause and unpause took effect
        timed = lab.ssh("t0=$(date +%s.%N); xl pause smoke; t1=$(date +%s.%N); sleep 1; "
                        "t2=$(date +%s.%N); xl unpause smoke; t3=$(date +%s.%N); echo $t0 $t1 $t2 $t3", 60)
        t0, t1, t2, t3 = map(float, timed.stdout.split())
        assert wait_until("records after the unpause", lambda: heartbeats(lab)[-1] > t3 + 0.5, 30), diagnose(lab)
        times = heartbeats(lab)
        gap = max(b - a for a, b in itertools.pairwise(times) if b > t0 and a < t3)
        downtime = gap - CADENCE_S
        assert t2 - t1 - CADENCE_S - 0.05 <= downtime <= t3 - t0 + 0.05, (downtime, t0, t1, t2, t3)
    finally:
        lab.ssh("xl destroy smoke")
    assert "smoke" not in lab.ssh("xl list").stdout
