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


def journal(run_dir: str) -> str:
    return os.path.join(run_dir, "xenstore.journal")


def make(run_dir: str) -> None:
    for sub in ("rec", "disk", "log", "console"):
        os.makedirs(os.path.join(run_dir, sub), exist_ok=True)
    os.makedirs(sock_dir(run_dir), mode=0o700, exist_ok=True)


def remove(run_dir: str, keep: bool = False) -> None:
    """The run dir (unless `keep`) and its socket directory wherever that is."""
    shutil.rmtree(sock_dir(run_dir), ignore_errors=True)
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
