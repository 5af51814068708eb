"""A stock Debian Xen host — systemd, Debian's Xen packages and init scripts, sshd, no file of
ours (harness/lab/stock.py) — is refused until prepared, prepared over ssh as a bare-metal runner
is, driven as a plain ``xen+ssh://`` host through a netback stall (the nightly stock job: the matrix), and
left with no file of ours by ``windsor host remove``. Marked `lab` (QEMU, root) and `nightly`: its
7 minutes took CI over 30 (34.5 min at the last landing), and the stock lab's own I/O stalls (README,
"stock host") make a few percent of its runs a false alarm of the lab, which CI cannot afford."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import pytest_argv, run

from harness.junit import case_props, read_cases
from harness.lab.machine import Lab

pytestmark = [pytest.mark.lab, pytest.mark.nightly]

# every path on dom0's root file system, but for what the system itself churns (kernel and
# runtime file systems, the journal, systemd's timer stamps and random seed)
LISTING = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp "
           "-o -path /var/log/journal -o -path /var/lib/systemd -o -path /var/tmp \\) -prune -o -print | sort")


@pytest.fixture(scope="module")
def stock() -> Iterator[tuple[Lab, str]]:
    Lab().down()  # one lab at a time fits on this machine
    lab = Lab(dom0="stock")
    state = lab.up()
    try:
        yield lab, f"{state.url}?identity={lab.files.key}"
    finally:
        lab.down()


def listing(lab: Lab) -> set[str]:
    done = lab.ssh(LISTING, 120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines())


def test_a_stock_xen_host_is_prepared_runs_a_case_and_is_left_clean(stock: tuple[Lab, str], tmp_path: Path) -> None:
    lab, url = stock
    before = listing(lab)
    assert not any("windsor" in path for path in before)

    inventory = tmp_path / "hosts.toml"
    inventory.write_text(f'[[host]]\nurl = "{url.split("?")[0]}"\ntest_host = true\ndom0_faults = true\n')
    host = f"{url}&inventory={inventory}"
    # refused before it is prepared, with the command that fixes it
    done = run(*pytest_argv("suites", "--host", host, "--roles", "netback", "--faults", "kill", "-q"))
    assert done.returncode != 0 and f"windsor host prepare {url}" in done.stdout + done.stderr, done.stdout[-1500:]
    status = run("windsor", "host", "status", url)
    assert status.returncode == 1 and "no harness tools installed" in status.stdout, status.stdout + status.stderr

    # a host that runs xapi is refused in one line, and nothing on it changes
    assert lab.ssh("cp /bin/sleep /tmp/xapi && (setsid /tmp/xapi 600 </dev/null >/dev/null 2>&1 &)").returncode == 0
    try:
        refused = run("windsor", "host", "prepare", url)
    finally:
        lab.ssh("pkill -x xapi; rm -f /tmp/xapi")
    said = [line for line in refused.stderr.splitlines() if "error" in line]
    assert refused.returncode == 2 and len(said) == 1 and "xapi" in said[0], refused.stdout + refused.stderr
    assert listing(lab) == before

    cold = run("windsor", "host", "prepare", url, timeout=900)
    assert cold.returncode == 0 and "uploaded 13 files" in cold.stdout, cold.stdout[-2000:] + cold.stderr[-2000:]
    warm = run("windsor", "host", "prepare", url)
    assert warm.returncode == 0 and "uploaded 0 files" in warm.stdout, warm.stdout[-2000:] + warm.stderr[-2000:]
    print(cold.stdout.splitlines()[-1], warm.stdout.splitlines()[-1], sep="\n")
    status = run("windsor", "host", "status", url)
    assert status.returncode == 0 and "matches this harness" in status.stdout, status.stdout + status.stderr

    # a stall of netdd with 3 guests and no baseline (CI's 30 minutes: the baseline, a capped
    # stock dom0, took about 2 of the test's 8 minutes); the nightly stock job runs the whole
    # matrix with its baselines, kills (a stock dom0 crash and reboot) included
    junit = tmp_path / "junit.xml"
    done = run(*pytest_argv("suites", "--host", host, "--roles", "netback", "--faults", "stall", "--guests", "3",
                            "--no-baseline", "--junitxml", str(junit), "-q"), timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    (case,) = read_cases(str(junit))
    props = case_props(case)
    assert props["topology"] == "disaggregated" and "baseline.topology" not in props, props
    # contained: netdd stopped; g03, the guest with no net device, is untouched
    assert props["target_domain"] == "netdd" and props["guests_total"] == "3", props
    assert "g03" not in props["impacted"] and props["impacted"] != "none", props
    assert props["host_survived"] == "true" and float(props["fault_window_s"]) > 5, props
    assert props["build"].startswith("Xen 4.17"), props["build"]

    names = lab.ssh("cat /var/lib/windsor/state/names; xl list").stdout
    removed = run("windsor", "host", "remove", url)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    # oxenstored rotates its access log by size (xenstored-access.log.1, ...): the host daemon's
    # own files, which every busy host has; everything else new must be gone
    left = sorted(p for p in listing(lab) - before if not p.startswith("/var/log/xen/xenstored-access.log."))
    assert not left, f"left after windsor host remove: {left[:40]} (our domains' names, xl list: {names})"
    assert "windsor0" not in lab.ssh("ip -o link").stdout
    assert lab.ssh("pgrep -af '[w]indsor|/dev/[p]ts'").stdout == ""  # no agent, console reader or watchdog
    assert lab.ssh("systemctl cat windsor-boot.service").returncode != 0
