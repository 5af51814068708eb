"""Where a sim:// host keeps its sockets, records, disks and logs, under one run dir."""

from __future__ import annotations

import os


def sock(run_dir: str, name: str) -> str:
    return os.path.join(run_dir, "s", f"{name}.sock")


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
    for sub in ("s", "rec", "disk", "log", "console"):
        os.makedirs(os.path.join(run_dir, sub), exist_ok=True)
