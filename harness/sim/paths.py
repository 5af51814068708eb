"""Where a sim:// host keeps its sockets, records, disks and logs, under one run dir.

A Unix socket's path must fit in 107 bytes: when the run dir is too deep for that, the sockets go
to a short directory named after it (`sock_dir`), removed with the host (`remove`)."""

from __future__ import annotations

import hashlib
import os
import shutil

LONGEST_SOCKET_NAME = 52  # "<31-char domain>.<domid>.<what>.sock" (harness/sim/context.py)


def sock_dir(run_dir: str) -> str:
    inside = os.path.join(run_dir, "s")
    if len(inside) + 1 + LONGEST_SOCKET_NAME <= 107:
        return inside
    return os.path.join("/tmp", "wsk-" + hashlib.sha1(run_dir.encode()).hexdigest()[:16])


def sock(run_dir: str, name: str) -> str:
    return os.path.join(sock_dir(run_dir), f"{name}.sock")


def manager(run_dir: str) -> str:
    return sock(run_dir, "manager")


def xenstore(run_dir: str) -> str:
    return sock(run_dir, "xenstore")


def toolstack(run_dir: str) -> str:
    return sock(run_dir, "toolstack")


def dom0_ctl(run_dir: str) -> str:
    return sock(run_dir, "dom0-ctl")


def records(run_dir: str, guest: str) -> str:
    return os.path.join(run_dir, "rec", f"{guest}.rec")


def disk(run_dir: str, guest: str) -> str:
    return os.path.join(run_dir, "disk", f"{guest}.img")


def log(run_dir: str, name: str) -> str:
    return os.path.join(run_dir, "log", f"{name}.log")


def cpu(run_dir: str, domain: str = "") -> str:
    """A domain's CPU account (harness/sim/vcpu.py); without a domain, their directory."""
    return os.path.join(run_dir, "cpu", domain)


def journal(run_dir: str) -> str:
    return os.path.join(run_dir, "xenstore.journal")


def states(run_dir: str) -> str:
    """Every split-driver state change xenstore saw (harness/sim/xenstore.py)."""
    return os.path.join(run_dir, "xs-states.log")


def owner(run_dir: str) -> str:
    """Who booted the host (harness/lease.py's Owner): present while the host may still run."""
    return os.path.join(run_dir, "owner.json")


def kept(run_dir: str) -> str:
    """Present when the run dir is to be kept (sim://?keep=1) after the host ends."""
    return os.path.join(run_dir, "keep")


def make(run_dir: str) -> None:
    for sub in ("rec", "disk", "log", "console", "cpu"):
        os.makedirs(os.path.join(run_dir, sub), exist_ok=True)
    os.makedirs(sock_dir(run_dir), mode=0o700, exist_ok=True)


def remove(run_dir: str, keep: bool = False) -> None:
    """The run dir and its socket directory wherever that is; a kept run dir (`keep`, or marked
    by `kept`) stays as data: only its owner file goes, so no later session takes it for a host."""
    shutil.rmtree(sock_dir(run_dir), ignore_errors=True)
    if keep or os.path.exists(kept(run_dir)):
        try:
            os.unlink(owner(run_dir))
        except FileNotFoundError:
            pass
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
