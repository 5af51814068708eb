"""The sim:// host's side of leases (harness/lease.py): its journal and its dead-man's switch.

The domain manager keeps them: every change (harness/change.py; a stall, a cap, a flag, a memory
limit) is taken as a lease — written to the journal (``ROOT/leases/ID.json``, atomically)
*before* anything is changed, with the pids and start times it stops and the record that undoes
the rest (harness/sim/changes.py) — and is released by the harness (`unpause`) or, at the end of the lease, by the
manager itself, whether or not the harness still exists. Every release is appended to
``ROOT/leases.log`` (who released it, when, on the machine's monotonic clock). The journal is
what a later session reads to revert what a killed run left behind (`recover_journal`).

The manager also watches the harness that booted it (a pidfd): when it is gone, the host is
orphaned; it keeps every lease until its end, stays up `ORPHAN_LINGER_S` after the last one so
that its recovery can be seen, then shuts itself down.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness.atomic import write_atomic
from harness.lease import Owner
from harness.sim.changes import Plan, undo_record

ORPHAN_LINGER_S = 5.0
CAP_PERIOD_S = 0.1  # a throttled tree runs cap % of each period, and is stopped for the rest


def journal_dir(root: str) -> Path:
    return Path(root) / "leases"


def log_path(root: str) -> Path:
    return Path(root) / "leases.log"


def append_log(root: str, record: dict[str, Any]) -> None:
    """One JSON line per release; O_APPEND, so concurrent writers never interleave a line."""
    fd = os.open(log_path(root), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
    finally:
        os.close(fd)


def released(entry: dict[str, Any], by: str, at: float) -> dict[str, Any]:
    """The log record of a lease's end: which, by whom (harness, lease, recovery, shutdown), when."""
    return {"id": entry["id"], "by": by, "t": at, "wall": time.time(), "fault": entry["fault"],
            "target": entry["target"], "taken": entry["taken_mono"], "expires": entry["expires_mono"],
            "pids": entry["pids"], "undo": entry.get("undo") or {}}


LEASE_KEYS = ("id", "fault", "target", "owner", "pids", "expires_wall")


def damage(entry: Any) -> str | None:
    """Why a journal entry is not a lease this module wrote (None: it is one)."""
    if not isinstance(entry, dict):
        return f"a JSON {type(entry).__name__}, not an object"
    missing = [k for k in LEASE_KEYS if k not in entry]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)}"
    try:
        Owner(**entry["owner"])
        [(int(pid), float(started)) for pid, started in entry["pids"]]
        float(entry["expires_wall"])
    except (TypeError, ValueError):
        return "a malformed owner, pid list or expiry"
    return None


def scan_journal(root: str) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """The leases held (or left behind) under `root`, oldest first; and the damaged entries, with why."""
    out, damaged = [], []
    for path in sorted(journal_dir(root).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            continue  # released meanwhile (entries are written whole, renamed into place)
        except (OSError, ValueError) as exc:
            damaged.append((path, f"not JSON: {exc}"))
            continue
        why = damage(entry)
        if why is None:
            out.append(entry)
        else:
            damaged.append((path, why))
    return sorted(out, key=lambda e: float(e.get("taken_wall", 0))), damaged


def read_journal(root: str) -> list[dict[str, Any]]:
    """Every lease still held (or left behind) under `root`, oldest first (damaged entries left out)."""
    return scan_journal(root)[0]


def quarantine(root: str, damaged: list[tuple[Path, str]]) -> list[str]:
    """Move damaged entries aside (``leases/quarantine/``), so that one bad file never stops a
    session or a recovery; one line each. Nothing is reverted from them: they say nothing sure."""
    said = []
    for path, why in damaged:
        dest = journal_dir(root) / "quarantine" / path.name
        try:
            dest.parent.mkdir(exist_ok=True)
            path.replace(dest)
        except OSError as exc:
            said.append(f"a damaged lease journal entry {path} ({why}) could not be moved aside: {exc.strerror}")
            continue
        said.append(f"quarantined the damaged lease journal entry {path.name} ({why}) to {dest}: nothing was "
                    "reverted from it")
    return said


def resume(pids: list[list[float]]) -> int:
    """SIGCONT every recorded process that is still the one recorded (pid and start time)."""
    resumed = 0
    for pid, started in pids:
        try:
            proc = psutil.Process(int(pid))
            if abs(proc.create_time() - started) < 0.01:
                proc.resume()
                resumed += 1
        except psutil.Error:
            continue
    return resumed


@dataclass
class Held:
    entry: dict[str, Any]
    timer: threading.Timer
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    ended: threading.Event = field(default_factory=threading.Event)
    duty: threading.Thread | None = None  # a throttle's stop/continue cycle


def suspend(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.suspend()
        except psutil.NoSuchProcess:
            pass


def duty_cycle(procs: list[psutil.Process], cap_pct: int, ended: threading.Event) -> None:
    """Run `procs` `cap_pct` % of every period (what a credit2 cap does to a domain), until `ended`."""
    on = CAP_PERIOD_S * cap_pct / 100
    while True:
        suspend(procs)
        stopped_for = ended.wait(CAP_PERIOD_S - on)
        for proc in procs:
            try:
                proc.resume()
            except psutil.NoSuchProcess:
                pass
        if stopped_for or ended.wait(on):
            return


class LeaseKeeper:
    """Takes, holds and releases a host's leases; `on_idle` runs whenever none is left."""

    def __init__(self, root: str, host_info: dict[str, Any], on_idle: Callable[[], None]) -> None:
        self.root, self.host_info, self.on_idle = root, host_info, on_idle
        self.held: dict[str, Held] = {}
        self.ended: dict[str, tuple[float, str]] = {}  # lease id → when, and by whom, it ended
        self.lock = threading.Lock()
        journal_dir(root).mkdir(parents=True, exist_ok=True)

    def take(self, lease: dict[str, Any], target: str, change: dict[str, Any], todo: Plan) -> float:
        """Journal the lease (with `change`, and the undo record that takes it back), arm its
        end, then apply it as `todo` says (harness/sim/changes.py): `todo.apply()`, else stop its
        processes (with a cap: let them run only that share of the time); the time it took effect."""
        procs, cap_pct = todo.procs, todo.cap_pct
        total = float(lease["window_s"]) + float(lease["margin_s"])
        now_mono, now_wall = time.monotonic(), time.time()
        entry = {**lease, "target": target, "host": self.host_info, "change": change, "undo": todo.undo,
                 "pids": [[p.pid, p.create_time()] for p in procs], "cap_pct": cap_pct,
                 "taken_mono": now_mono, "expires_mono": now_mono + total,
                 "taken_wall": now_wall, "expires_wall": now_wall + total}
        write_atomic(journal_dir(self.root) / f"{lease['id']}.json", json.dumps(entry))
        timer = threading.Timer(total, self.release, (lease["id"], "lease"))
        timer.daemon = True
        held = Held(entry, timer)
        with self.lock:
            self.held[lease["id"]] = held
        timer.start()
        hit = time.monotonic()
        if todo.apply is not None:
            todo.apply()
        elif cap_pct:
            held.duty = threading.Thread(target=duty_cycle, args=(procs, cap_pct, held.ended), daemon=True)
            held.duty.start()
        else:
            suspend(procs)
        return hit

    def release(self, lease_id: str, by: str) -> tuple[float, str] | None:
        """Resume what the lease stopped and clear it: when (and by whom) it ended — now, or
        earlier if it had ended already (harmless); None if this host never held it."""
        with self.lock:
            held = self.held.get(lease_id)
        if held is None:
            return self.ended.get(lease_id)
        with held.lock:
            if held.done:
                return self.ended.get(lease_id)
            held.timer.cancel()
            held.ended.set()
            if held.duty is not None:
                held.duty.join(2 * CAP_PERIOD_S)
            resume(held.entry["pids"])
            undo_record(held.entry.get("undo") or {})
            resumed = time.monotonic()
            (journal_dir(self.root) / f"{lease_id}.json").unlink(missing_ok=True)
            append_log(self.root, released(held.entry, by, resumed))
            held.done = True
        with self.lock:
            self.held.pop(lease_id, None)
            self.ended[lease_id] = (resumed, by)
            idle = not self.held
        if idle:
            self.on_idle()
        return resumed, by

    def active(self) -> list[dict[str, Any]]:
        with self.lock:
            return [h.entry for h in self.held.values()]


def watch_owner(pid: int, on_gone: Callable[[], None]) -> None:
    """Call `on_gone` (once, from a thread) when process `pid` — our parent — exits."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        on_gone()
        return
    if os.getppid() != pid:  # it went before the pidfd was opened: that pid may be someone else
        os.close(fd)
        on_gone()
        return

    def wait() -> None:
        select.select([fd], [], [])
        os.close(fd)
        on_gone()

    threading.Thread(target=wait, name="owner-watch", daemon=True).start()


def recover_journal(root: str) -> list[str]:
    """Revert every lease under `root` whose owner is gone; what was done, one line each."""
    entries, damaged = scan_journal(root)
    said = quarantine(root, damaged)
    for entry in entries:
        owner = Owner(**entry["owner"])
        if owner.alive() is not False:
            continue  # a live run (or one on another machine) still holds it: not ours to undo
        path = journal_dir(root) / f"{entry['id']}.json"
        if not path.exists():
            continue  # its host released it meanwhile
        n = resume(entry["pids"]) + undo_record(entry.get("undo") or {})
        path.unlink(missing_ok=True)
        append_log(root, released(entry, "recovery", time.monotonic()))
        left = entry["expires_wall"] - time.time()
        when = f"{left:.1f}s before its lease ended" if left > 0 else f"{-left:.1f}s after its lease ended"
        said.append(f"reverted {entry['fault']} of {entry['target']} (lease {entry['id']}) left by {owner}, "
                    f"which is gone: {n} processes resumed or things undone, {when}")
    return said
