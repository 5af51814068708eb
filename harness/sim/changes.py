"""How the sim:// host applies each kind of `Change` (harness/change.py), and what undoes it.

A change is turned into a `Plan`: the processes to stop (``pause``), or to stop and continue in a
duty cycle (``cap``), and an `undo` record that says, on its own, how to take the change back:
``unlink`` (flag files the roles look at), ``rlimit`` (memory limits to restore, per process and
start time). The record goes into the lease journal before the change is applied, so the manager
at the lease's end, or a later session's `recover` when the manager is gone too, can undo it
with nothing else in hand (harness/sim/leases.py, `undo_record`).

Flags are files in ``RUN_DIR/flags/``: ``link-MAC`` (netback drops that port's frames),
``eio-GUEST`` (blkback answers that guest's requests with EIO), ``storm-GUEST`` (that guest floods
xenstore), ``flood-GUEST-DEVICE`` (that guest drives its disk or net without a cadence: a noisy
neighbour, harness/sim/guest.py). A role checks its flag on every request: a stat in memory, about a microsecond.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from harness.change import FLOOD_DEVICES

FLAG_KINDS = {"link-down": "link", "disk-error": "eio", "xenstore-storm": "storm", "flood": "flood"}
MIN_MEMORY_PCT, MAX_MEMORY_PCT = 1, 99


def flag(run_dir: str, kind: str, key: str) -> str:
    """The flag file of one guest's link (`key` = its MAC), disk or storm (`key` = its name)."""
    return os.path.join(run_dir, "flags", f"{kind}-{key}")


def raised(run_dir: str, kind: str, key: str) -> bool:
    return os.path.exists(flag(run_dir, kind, key))


@dataclass
class Plan:
    procs: list[psutil.Process] = field(default_factory=list)  # stopped (pause) or duty-cycled (cap)
    cap_pct: int = 0
    undo: dict[str, Any] = field(default_factory=dict)
    apply: Callable[[], None] | None = None  # for the kinds that stop nothing


def plan(change: dict[str, Any], run_dir: str, tree: Callable[[], list[psutil.Process]],
         mac_of: Callable[[str], str]) -> Plan:
    """The plan of `change` (a `Change` as JSON): `tree` gives the target's process tree,
    `mac_of` a guest's MAC. ValueError on a change this host cannot apply."""
    kind, args, guest = str(change["kind"]), dict(change.get("args") or {}), change.get("guest")
    if kind == "pause":
        return Plan(tree())
    if kind == "cap":
        return Plan(tree(), cap_pct=int(args["cap_pct"]))
    if kind in FLAG_KINDS:
        if not guest:
            raise ValueError(f"{kind} needs a guest")
        key = mac_of(str(guest)) if kind == "link-down" else str(guest)
        if kind == "flood":
            if args.get("device") not in FLOOD_DEVICES:
                raise ValueError(f"flood: device must be one of {', '.join(FLOOD_DEVICES)}, not {args.get('device')!r}")
            key += f"-{args['device']}"
        path = flag(run_dir, FLAG_KINDS[kind], key)

        def raise_flag() -> None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="ascii") as fh:
                fh.write(kind)

        return Plan(undo={"unlink": [path]}, apply=raise_flag)
    if kind == "memory":
        pct = int(args["memory_pct"])
        if not MIN_MEMORY_PCT <= pct <= MAX_MEMORY_PCT:
            raise ValueError(f"memory_pct={pct} is out of range")
        procs = tree()
        limits: list[list[Any]] = []
        for proc in procs:  # the soft limit only: lowering it needs no privilege, nor does raising it back
            soft, hard = proc.rlimit(psutil.RLIMIT_AS)
            limits.append([proc.pid, proc.create_time(), soft, hard, max(1, proc.memory_info().vms * pct // 100)])

        def lower() -> None:
            for pid, started, _, hard, new in limits:
                _set_limit(int(pid), float(started), int(new), int(hard))

        return Plan(undo={"rlimit": [row[:4] for row in limits]}, apply=lower)
    raise ValueError(f"sim:// cannot apply a change of kind {kind!r}")


def _set_limit(pid: int, started: float, soft: int, hard: int) -> bool:
    try:
        proc = psutil.Process(int(pid))
        if abs(proc.create_time() - started) >= 0.01:
            return False
        proc.rlimit(psutil.RLIMIT_AS, (int(soft), int(hard)))
        return True
    except (psutil.Error, OSError, ValueError):
        return False


def undo_record(undo: dict[str, Any]) -> int:
    """Take back what an undo record says (flags removed, memory limits restored); how many
    things it undid. Harmless twice, and on processes that are gone or were replaced."""
    done = 0
    for path in undo.get("unlink", []):
        try:
            os.unlink(path)
            done += 1
        except FileNotFoundError:
            pass
    for pid, started, soft, hard in undo.get("rlimit", []):
        done += _set_limit(int(pid), float(started), int(soft), int(hard))
    return done
