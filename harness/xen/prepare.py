"""``windsor host prepare|status|remove URL``: the harness's tools and images on a stock Xen host,
over ssh (harness/xen/payload.py says what and where).

- prepare: checks the host first and changes nothing when it cannot serve (no ``xl``, a Xen
  series we do not support, xapi, too little free memory, no bridge support, too little storage,
  not root); then uploads what is missing or differs, verifies every file's checksum on the host,
  and switches ``/opt/windsor/current`` to it in one rename. Running it twice uploads nothing.
- status: what is installed, which version, whether it matches this harness, files verified.
- remove: tears down our domains, ends our leases, and deletes every file of ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HostError, UsageError
from harness.xen.payload import (
    CURRENT,
    PREFIX,
    STATE,
    STATE_ROOT,
    SUPPORTED_XEN,
    UNIT,
    manifest,
    manifest_text,
    parse_manifest,
    tool,
    tools_version,
    unit_text,
)
from harness.xen.plan import DD_MEMORY_MB, GUEST_MEMORY_MB, SUBNET
from harness.xen.remote import Remote, q

log = logging.getLogger("windsor.xen")
NO_DMSETUP = ("no dmsetup: disk-error cannot fail the guest disks dom0 serves (monolithic); "
              "apt install dmsetup")
STORAGE_MB = 256  # guest disks, console records, the payload's upload area
SURVEY = f"""
echo xl=$(command -v xl)
xl info 2>/dev/null | sed -n 's/^\\(xen_major\\|xen_minor\\|xen_extra\\|free_memory\\) *: */\\1=/p'
if [ -e /opt/xensource/bin/xapi ] || pgrep -x xapi >/dev/null || command -v xe >/dev/null; then echo xapi=1; fi
echo uid=$(id -u)
if [ -d /sys/module/bridge ] || modprobe -n bridge 2>/dev/null; then echo bridge=1; fi
echo storage_mb=$(df -Pm /var/lib | awk 'NR == 2 {{ print $4 }}')
echo libxenctrl=$(ls /usr/lib/x86_64-linux-gnu/libxenctrl.so.4.17 /usr/lib/libxenctrl.so.4.17 2>/dev/null | head -1)
[ -d /run/systemd/system ] && echo systemd=1
command -v dmsetup >/dev/null && echo dmsetup=1
echo installed=$(cat {CURRENT}/VERSION 2>/dev/null)
echo subnet=$(ip -o addr 2>/dev/null | grep -v ' windsor0 ' | grep -c ' {SUBNET}\\.')
echo missing=$(for t in bash flock setsid stty sha256sum gzip xenstore-read ip pkill; do
    command -v $t >/dev/null || printf '%s ' $t; done)
"""


@dataclass(frozen=True)
class Facts:
    """What the host is, from one survey command."""

    xl: str
    xen: str  # "4.17.5" or ""
    free_mb: int
    xapi: bool
    root: bool
    bridge: bool
    storage_mb: int
    libxenctrl: str
    systemd: bool
    installed: str  # the VERSION of our tools there, or ""
    subnet_used: bool
    missing_tools: tuple[str, ...]
    dmsetup: bool = False  # disk-error on the disks dom0 serves needs it (not the harness's)

    @classmethod
    def parse(cls, text: str) -> Facts:
        kv = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

        def num(key: str) -> int:
            try:
                return int(kv.get(key, "").strip() or 0)
            except ValueError:
                return 0

        major, minor = kv.get("xen_major", "").strip(), kv.get("xen_minor", "").strip()
        xen = f"{major}.{minor}{kv.get('xen_extra', '').strip()}" if major else ""
        return cls(kv.get("xl", "").strip(), xen, num("free_memory"), "xapi" in kv, kv.get("uid", "").strip() == "0",
                   "bridge" in kv, num("storage_mb"), kv.get("libxenctrl", "").strip(), "systemd" in kv,
                   kv.get("installed", "").strip(), num("subnet") > 0, tuple(kv.get("missing", "").split()),
                   "dmsetup" in kv)

    def series(self) -> str:
        return ".".join(self.xen.split(".")[:2])


def leased_by(remote: Remote) -> str | None:
    """Who holds the host now (a live run's host lease, harness/hostlease.py), or None: changing
    the tools under a running session would break it."""
    from harness.hostlease import HostLease
    from harness.xen.hostlease import LEASE_DIR

    text = remote.run(f"cat {LEASE_DIR}/host.lease", timeout=15).out
    try:
        lease = HostLease.parse(text)
    except ValueError:
        return None
    return None if lease.stale() else lease.describe()


def survey(remote: Remote) -> Facts:
    return Facts.parse(remote.check(SURVEY, timeout=60))


def memory_needed(guests: int = 4, driver_domains: int = 2) -> int:
    """MB the largest built-in topology needs for its domains (with 64 MB of headroom)."""
    return driver_domains * DD_MEMORY_MB + guests * GUEST_MEMORY_MB + 64


def refusal(url: str, facts: Facts, need_mb: int) -> str | None:
    """Why the harness cannot run on this host (one line, with the fix), or None."""
    if facts.xapi:
        return (f"{url} runs xapi (XenServer/XCP-ng): domains there belong to XAPI, and driving them with xl behind "
                "its back is unsafe; xapi hosts are not supported yet")
    if not facts.root:
        return f"{url}: the harness needs root in the control domain (log in as root@)"
    if not facts.xl:
        return f"{url} has no xl: install Xen's tools (Debian: apt-get install xen-system-amd64) and boot Xen"
    if not facts.xen:
        return f"{url}: xl info fails: this control domain is not running under Xen (reboot into Xen)"
    if facts.series() not in SUPPORTED_XEN:
        return f"{url} runs Xen {facts.xen}; the harness supports Xen {', '.join(SUPPORTED_XEN)} only"
    if facts.missing_tools:
        return f"{url} lacks {', '.join(facts.missing_tools)}: install them (Debian: coreutils, util-linux, procps)"
    if not facts.libxenctrl:
        return f"{url} has no libxenctrl.so.4.17 (Debian: apt-get install libxenmisc4.17)"
    if facts.free_mb < need_mb:
        return (f"{url} has {facts.free_mb} MB free for domains, the topologies need {need_mb} MB: give dom0 less "
                "(Xen's dom0_mem=1024M,max:1024M) or stop other domains")
    if not facts.bridge:
        return f"{url}: no bridge support in dom0's kernel (the driver domains' and guests' networks need it)"
    if facts.storage_mb < STORAGE_MB:
        return f"{url} has {facts.storage_mb} MB free under /var/lib; the guests' disks need {STORAGE_MB} MB"
    if facts.subnet_used:
        return (f"{url} already uses {SUBNET}.0/24, the harness's private test subnet (on its own bridge "
                "windsor0): the harness would collide with it")
    return None


@dataclass(frozen=True)
class Prepared:
    version: str
    uploaded: tuple[str, ...]
    uploaded_bytes: int
    seconds: float


def prepare(remote: Remote, url: str, payload: Callable[[], dict[str, Path]],
            progress: Callable[[str], None]) -> Prepared:
    """Install the payload (path → local file, built only once the host is found fit) under the
    versioned prefix; see the module."""
    started = time.monotonic()
    facts = survey(remote)
    why = refusal(url, facts, memory_needed()) or leased_by(remote)
    if why:
        raise UsageError(why)
    files = payload()
    version = tools_version()
    vdir = f"{PREFIX}/{version}"
    sums = manifest(files)
    there = parse_manifest(remote.run(f"cat {q(vdir)}/MANIFEST", timeout=30).out)
    stale = [rel for rel, digest in sums.items() if there.get(rel) != digest]
    if not stale:  # the manifest says so; the files must say so too
        stale = verify(remote, vdir, sums)
    progress(f"{url}: Xen {facts.xen}, {facts.free_mb} MB free; tools {version}: "
             + (f"{len(stale)} of {len(sums)} files to upload" if stale else "installed and verified"))
    if not facts.dmsetup:
        progress(f"{url}: {NO_DMSETUP}")
    sent = 0
    for rel in stale:
        size = files[rel].stat().st_size
        progress(f"{url}: uploading {rel} ({size / 1e6:.1f} MB)")
        remote.put(files[rel], f"{vdir}/.upload/{rel}")
        sent += size
    if stale:
        bad = verify(remote, f"{vdir}/.upload", {rel: sums[rel] for rel in stale})
        if bad:
            raise HostError(f"{url}: {', '.join(bad)} arrived damaged (checksum differs); nothing was switched")
        moves = " && ".join(f"mkdir -p {q(str(Path(vdir, rel).parent))} && mv -f {q(f'{vdir}/.upload/{rel}')} "
                            f"{q(f'{vdir}/{rel}')} && chmod {755 if rel.startswith(('bin/', 'scripts/')) else 644} "
                            f"{q(f'{vdir}/{rel}')}" for rel in stale)
        remote.check(f"set -e; {moves}; rm -rf {q(vdir)}/.upload", timeout=60)
    unit = unit_text()
    finish = [
        "set -e",
        f"printf %s {q(manifest_text(sums))} > {q(vdir)}/MANIFEST",
        f"printf '%s\\n' {q(version)} > {q(vdir)}/VERSION",
        f"mkdir -p {STATE}",
        # Xen's own logs that exist before the harness first comes: `remove` deletes those that
        # it caused (the hotplug scripts' log) only if they were not there
        f"[ -e {STATE_ROOT}/xen-logs-before ] || ls /var/log/xen > {STATE_ROOT}/xen-logs-before 2>/dev/null || true",
        # dom0's health says since when this boot of it was ready; windsor-boot writes it at boot
        "[ -s /run/windsor-ready ] || date +%s.%N > /run/windsor-ready",
        f"ln -sfn {q(version)} {PREFIX}/.current.tmp && mv -T {PREFIX}/.current.tmp {CURRENT}",
        # older versions go (a running topology's tools are the current ones)
        f"for d in {PREFIX}/*; do [ \"$d\" = {q(vdir)} ] || [ \"$d\" = {CURRENT} ] || rm -rf \"$d\"; done",
    ]
    if facts.systemd:
        finish += [f"[ \"$(cat {UNIT} 2>/dev/null)\" = {q(unit.rstrip())} ] || "
                   f"{{ printf %s {q(unit)} > {UNIT}; systemctl daemon-reload; }}",
                   "systemctl is-enabled -q windsor-boot.service || systemctl enable -q windsor-boot.service"]
    remote.check("\n".join(finish), timeout=60)
    return Prepared(version, tuple(stale), sent, time.monotonic() - started)


def verify(remote: Remote, base: str, sums: dict[str, str]) -> list[str]:
    """The files under `base` whose checksum on the host differs from `sums` (or that are missing)."""
    listing = manifest_text(sums)
    out = remote.run(f"cd {q(base)} 2>/dev/null && printf %s {q(listing)} | sha256sum -c --quiet - 2>/dev/null",
                     timeout=300).out
    bad = [line.rsplit(":", 1)[0] for line in out.splitlines() if "FAILED" in line]
    if not out.strip() and remote.run(f"cd {q(base)}", timeout=10).rc != 0:
        return sorted(sums)
    return bad


def status(remote: Remote, url: str) -> tuple[bool, list[str]]:
    """(installed and matching this harness, lines to print)."""
    facts = survey(remote)
    want = tools_version()
    lines = [f"{url}: Xen {facts.xen or '(xl info fails)'}, {facts.free_mb} MB free for domains"]
    why = refusal(url, facts, memory_needed())
    if why:
        lines.append(f"cannot serve: {why}")
    if not facts.installed:
        lines.append(f"no harness tools installed (this harness needs {want}): windsor host prepare {url}")
        return False, lines
    sums = parse_manifest(remote.run(f"cat {CURRENT}/MANIFEST", timeout=30).out)
    bad = verify(remote, CURRENT, sums) if sums else ["MANIFEST"]
    leases = remote.run(f"{tool('windsor-lease')} list", timeout=30).out.splitlines()
    matches = facts.installed == want and not bad
    lines.append(f"tools {facts.installed} in {PREFIX}/{facts.installed}: "
                 + ("matches this harness" if facts.installed == want else f"this harness needs {want}: "
                    f"windsor host prepare {url}"))
    lines.append(f"{len(sums)} files, " + (f"damaged: {', '.join(bad)}" if bad else "all checksums verified"))
    if not facts.dmsetup:
        lines.append(NO_DMSETUP)
    lines.append(f"boot unit: {'windsor-boot.service' if facts.systemd else 'none (no systemd)'}; "
                 f"{len(leases)} fault lease(s) held; {leased_by(remote) or 'no run holds the host'}")
    return matches and not why, lines


def remove(remote: Remote, url: str) -> list[str]:
    """Everything of ours off the host: domains, leases, bridge, unit, files, our domains' logs."""
    held = leased_by(remote)
    if held:
        raise UsageError(f"{held}: remove it when that run has ended")
    said = []
    if remote.run(f"test -x {tool('windsor-topo')}", timeout=10).ok:
        remote.run(f"{tool('windsor-topo')} down", timeout=120)
        said.append("our domains destroyed")
        for line in remote.run(f"{tool('windsor-lease')} list", timeout=30).out.splitlines():
            lease_id = line.split()[0]
            remote.run(f"{tool('windsor-lease')} end {q(lease_id)} remove", timeout=60)
            said.append(f"lease {lease_id} ended ({line.strip()})")
    script = "\n".join([
        # the logs xl and xenconsoled keep under the names our plans gave domains
        f"for n in $(cat {STATE}/names 2>/dev/null); do rm -f /var/log/xen/xl-$n.log* "
        "/var/log/xen/console/guest-$n.log* /var/log/xen/qemu-dm-$n.log*; done",
        # libxl's records of our domains that a reboot of the host cut short (not running any more)
        "for f in /var/lib/xen/userdata-d.*.libxl-json; do [ -e \"$f\" ] || continue; "
        "d=${f#/var/lib/xen/userdata-d.}; d=${d%%.*}; xl list \"$d\" >/dev/null 2>&1 && continue; "
        f"for n in $(cat {STATE}/names 2>/dev/null); do "
        "grep -aq \"\\\"name\\\": \\\"$n\\\"\" \"$f\" && rm -f \"$f\"; done; done",
        # ... and those a dom0 crash left empty (their domain was being created), since prepare
        f"find /var/lib/xen -maxdepth 1 -name 'userdata-d.*' -size 0 -newer {STATE_ROOT}/xen-logs-before -delete "
        "2>/dev/null",
        f"grep -qx xen-hotplug.log {STATE_ROOT}/xen-logs-before 2>/dev/null || rm -f /var/log/xen/xen-hotplug.log*",
        "ip link del windsor0 2>/dev/null",
        f"if [ -e {UNIT} ]; then systemctl disable -q windsor-boot.service 2>/dev/null; rm -f {UNIT}; "
        "systemctl daemon-reload; fi",
        f"rm -rf {PREFIX} {STATE_ROOT} /run/windsor-ready /run/windsor-agent",
        "true",
    ])
    remote.check(script, timeout=120)
    said.append(f"removed {PREFIX}, {STATE_ROOT}, the boot unit, the bridge windsor0 and our domains' logs")
    return said
