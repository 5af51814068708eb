"""The host lease on a Xen host (harness/hostlease.py has the record and the policy): the file
``/var/lib/windsor/state/host.lease`` in the control domain, swapped atomically by one shell
command. It is in the state directory, which survives a reboot of the host (the lab's dom0 mounts
a disk there): a run whose fault crashed the host still holds it when the host is back.

The command holds ``flock -w 20`` on ``/var/lib/windsor/state/host.lease.lock`` (util-linux, in every
Debian; the kernel drops the lock if the command dies, so no stale lock is ever left, unlike a
mkdir lock), reads the record, prints it, and only if it is what the harness expected writes the
new one beside it and renames it into place (or removes it). Both records reach the shell as
quoted positional parameters, never as code.
"""

from __future__ import annotations

from harness.xen.payload import STATE
from harness.xen.remote import Remote, q

LEASE_DIR = STATE  # `windsor host remove` deletes it with the state

SWAP = r"""set -e
dir=$1; expected=$2; new=$3
mkdir -p "$dir"
exec 9>>"$dir/host.lease.lock"
flock -w 20 9
found=$(cat "$dir/host.lease" 2>/dev/null || true)
printf '%s' "$found"
[ "$found" = "$expected" ] || exit 0
if [ -n "$new" ]; then
    printf '%s\n' "$new" >"$dir/host.lease.new"
    mv -f "$dir/host.lease.new" "$dir/host.lease"
else
    rm -f "$dir/host.lease"
fi
"""


def swap_command(expected: str, new: str, lease_dir: str = LEASE_DIR) -> str:
    """One shell command: compare-and-swap the lease record in `lease_dir`; prints what it read."""
    return f"sh -c {q(SWAP)} windsor-host-lease {q(lease_dir)} {q(expected)} {q(new)}"


def swap(remote: Remote, expected: str, new: str, lease_dir: str = LEASE_DIR) -> str:
    """`Host.swap_lease` on a control domain: the record as it was read (equal to `expected`
    when the new one was written)."""
    # the shell reads the record back without its trailing newlines: compare it so
    return remote.check(swap_command(expected.rstrip("\n"), new, lease_dir), timeout=40).rstrip("\n")
