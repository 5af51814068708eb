"""``sim://`` — the embedded Windsor host: every domain a real process (its own process group),
every role a real service over Unix sockets, faults real signals (psutil).

URL parameters: ``sim://?dir=/path`` (the host's root: its run dirs and its lease journal;
default ``/dev/shm/windsor-sim``, in memory), ``sim://?keep=1`` (keep the run dir with records,
disks and logs after shutdown), ``sim://?leak=NAME[,NAME]`` (plant known leaks, to prove the
harness catches them: harness/sim/leaks.py).

The root is in memory by default because a sim host's disks, xenstore journal and records are
its hardware: on the machine's own disk, every guest disk's fsync waits for the disk's journal
commit, so anything else writing to that disk stalls every guest disk at once (measured here: a
dd beside a run stalled all three disks 0.3–0.6 s, in 6 of 15 device-model-stall cases, each
reported as an escaped impact).

The root is the "machine": ``ROOT/wsim-*/`` one run dir per booted host (``owner.json`` says
which harness process booted it), ``ROOT/leases/`` the lease journal, ``ROOT/leases.log`` every
lease's end, ``ROOT/host.lease`` the host lease (harness/hostlease.py; swapped under an flock of
``ROOT/host.lease.lock``). A host outlives a harness that is killed: its manager ends the leases, then the host
shuts itself down (harness/sim/leases.py); `recover` cleans up after a killed run at once.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from harness.atomic import check_writable_dir, nearest_existing, write_atomic
from harness.backend.base import DeviceState, Entity, Health, Host, HostSpec, Target
from harness.change import KINDS, Change
from harness.errors import HostError, UsageError
from harness.isolation import ROLES as ISOLATION_ROLES
from harness.isolation import Answer, Device, Layout
from harness.lease import Lease, Owner
from harness.metrics import DOM0
from harness.model import KERNEL_ROLES, ROLES, GuestSpec, Pair, peers
from harness.sim import leaks, paths, vcpu
from harness.sim.dom0 import PROC_NAMES
from harness.sim.guest import BLOCK, block
from harness.sim.leases import recover_journal
from harness.sim.proto import Msg, request
from harness.sim.spawn import SpawnError, wait_ready
from harness.sim.sweep import MARKER, dead, sweep
from harness.topology import Topology
from harness.waiting import wait_until

REPO_ROOT = str(Path(__file__).resolve().parents[2])
log = logging.getLogger("windsor")
__all__ = ["MARKER", "SimHost", "default_root", "sweep"]


MEMORY_FS = "/dev/shm"


def default_root() -> str:
    """``/dev/shm/windsor-sim`` (memory) where the machine has it, else ``$TMPDIR/windsor-sim``."""
    base = MEMORY_FS if os.access(MEMORY_FS, os.W_OK | os.X_OK) else tempfile.gettempdir()
    return os.path.join(base, "windsor-sim")


def in_memory(path: str) -> bool:
    """Is `path` (or the nearest directory above it that exists) on a memory filesystem?"""
    probe = nearest_existing(path)
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return False
    best = max((m for m in mounts if probe.resolve().is_relative_to(m[0])), key=lambda m: len(m[0]), default=None)
    return best is not None and best[1] in ("tmpfs", "ramfs")


class SimHost(Host):
    capabilities = frozenset(KINDS)
    # its services come back in under a second; a dom0 xenstored never does (as on Xen 4.17), and a
    # crash loop would otherwise wait a minute for it
    fault_defaults: Mapping[str, Mapping[str, str]] = {"crash-loop": {"wait_s": "10"}}

    def __init__(self, spec: HostSpec) -> None:
        super().__init__(spec)
        unknown = set(spec.params) - {"dir", "keep", "leak"}
        if unknown or spec.host or spec.port:
            raise UsageError(f"sim:// takes no host and only ?dir=...&keep=1&leak=..., not {spec.url!r}")
        self.leaks = leaks.parse(spec.params.get("leak", ""))
        self.root = os.path.abspath(spec.params.get("dir") or default_root())
        check_writable_dir(self.root, f"sim://?dir={self.root}")
        self.keep = spec.params.get("keep", "") in ("1", "true", "yes")
        self.run_dir = ""
        self.manager: subprocess.Popen[bytes] | None = None
        self.topology: Topology | None = None
        self.guests: tuple[GuestSpec, ...] = ()
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self._progress: dict[Pair, list[float]] = {}
        self._latency: dict[Pair, list[tuple[float, float]]] = {}
        self._acked: dict[str, list[int]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def boot(self, topology: Topology, guests: Sequence[GuestSpec], cadence: float, seed: int) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.run_dir = tempfile.mkdtemp(prefix="wsim-", dir=self.root)
        write_atomic(paths.owner(self.run_dir), json.dumps(dataclasses.asdict(Owner.me())))
        if self.keep:
            write_atomic(paths.kept(self.run_dir), "")
        topology = topology.bind(tuple(g.name for g in guests))
        self.topology, self.guests = topology, tuple(guests)
        paths.make(self.run_dir)
        env = {**os.environ, MARKER: self.run_dir, leaks.ENV: ",".join(self.leaks),
               "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
        cfg = {"topology": topology.as_dict(), "roles": list(ROLES), "parent": os.getpid(),
               "root": self.root, "keep": self.keep, "cadence": cadence}
        with open(paths.log(self.run_dir, "manager"), "ab") as err:
            self.manager = subprocess.Popen(
                [sys.executable, "-m", "harness.sim.manager", self.run_dir, json.dumps(cfg)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                start_new_session=True, env=env,
            )
        try:
            wait_ready(self.manager, 20.0)
        except SpawnError as exc:
            raise HostError(f"sim:// host manager did not start: {exc} (see {self.run_dir}/log)") from None
        self._ok(self._mgr({"op": "boot"}, 60.0), "boot")
        peer = peers(guests)

        def create(g: GuestSpec) -> None:
            spec = {"name": g.name, "devices": list(g.devices), "mac": g.mac,
                    "peer_mac": peer.get(g.name, ""), "cadence": cadence, "seed": seed, "boot": 0}
            answer = request(paths.toolstack(self.run_dir), {"op": "create", "guest": spec}, 60.0)
            self._ok(answer, f"create guest {g.name}")

        with ThreadPoolExecutor(max_workers=8) as pool:  # as many xl creates at once as a toolstack takes
            list(pool.map(create, guests))

    def reusable(self) -> str | None:
        if self.manager is None or self.manager.poll() is not None:
            return "its manager is gone"
        status = self.status()
        if status["state"] != "running" or int(status["boots"]) != 1:
            return f"the host is {status['state']} after {int(status['boots']) - 1} reboots"
        if status["leases"]:
            return f"{len(status['leases'])} leases still held"
        running = {d["name"] for d in status["domains"]}
        missing = sorted({g.name for g in self.guests} - running)
        return f"guests not running: {', '.join(missing)}" if missing else None

    def shutdown(self) -> None:
        if self.manager is not None:
            try:
                self._mgr({"op": "shutdown"}, 3.0)
                self.manager.wait(10.0)
            except (OSError, subprocess.TimeoutExpired):
                self.manager.kill()
                self.manager.wait()
            self.manager = None
        if self.run_dir:
            sweep(self.run_dir)
            paths.remove(self.run_dir, self.keep)

    # -- state -------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def _mgr(self, msg: Msg, timeout: float = 2.0) -> Msg:
        return request(paths.manager(self.run_dir), msg, timeout)

    def _ok(self, answer: Msg, what: str) -> Msg:
        if not answer.get("ok"):
            raise HostError(f"sim:// {what} failed: {answer.get('error')} (logs in {self.run_dir}/log)")
        return answer

    attackers = ISOLATION_ROLES
    cpu_accounting = True  # harness/sim/vcpu.py

    def layout(self) -> Layout:
        got = self._ok(self._mgr({"op": "layout"}, timeout=10.0), "layout")
        return Layout(tuple(Device(**d) for d in got["devices"]), dict(got["private"]))

    def attempt(self, attacker: str, action: str, target: str) -> Answer:
        got = self._ok(self._mgr({"op": "attempt", "as": attacker, "action": action, "target": target},
                                 timeout=20.0), f"{action} {target} from {attacker}")
        return Answer(bool(got["allowed"]), str(got["detail"]))

    def status(self) -> Msg:
        return self._ok(self._mgr({"op": "status"}), "status")

    def entities(self) -> tuple[Entity, ...]:
        out = []
        for dom in self.status()["domains"]:
            out.append(Entity(dom["name"], f"{dom['pid']}@{dom['create_time']}"))
            for proc, info in dom["procs"].items():
                out.append(Entity(f"{dom['name']}/{proc}", str(info["pid"])))
        return tuple(sorted(out, key=lambda e: e.name))

    def planned_target(self, topology: Topology, role: str, guest: str | None = None) -> Target:
        """Where the topology puts a role: a domain, or (process roles in dom0) a dom0 process."""
        domain = topology.domain_of(role, guest)
        process = None
        if domain == "dom0" and role not in KERNEL_ROLES:
            process = f"qemu-{guest}" if role == "device-model" else PROC_NAMES[role]
        return Target(role, domain, process, guest)

    def _target(self, role: str, guest: str | None) -> Target:
        if self.topology is None:
            raise HostError("sim:// host is not booted")
        return self.planned_target(self.topology, role, guest)

    def locate(self, role: str, guest: str | None = None) -> Target:
        target = self._target(role, guest)
        self._where(target)
        return target

    def _where(self, target: Target, status: Msg | None = None) -> dict[str, Any]:
        """The domain record, or the dom0 process record, behind a target."""
        doms = {d["name"]: d for d in (status or self.status())["domains"]}
        dom = doms.get(target.domain)
        if dom is None:
            raise HostError(f"{target.role} is placed in domain {target.domain!r}, which is not running")
        if target.process is None:
            return dict(dom)
        proc = dom["procs"].get(target.process)
        if proc is None:
            raise HostError(f"{target.role}: dom0 has no process {target.process!r}")
        return dict(proc)

    def _tree(self, target: Target) -> list[psutil.Process]:
        root = psutil.Process(int(self._where(target)["pid"]))
        return [root, *root.children(recursive=True)]

    # -- faults ------------------------------------------------------------------------------
    def kill(self, target: Target) -> float:
        procs = self._tree(target)
        hit = self.now()
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if not wait_until(f"{target.entity} to die", lambda: all(map(dead, procs)), 5.0, quiet=True):
            raise HostError(f"{target.entity} survived SIGKILL for 5s")
        return hit

    def _apply(self, change: Change, lease: Lease) -> float:
        # the manager journals the lease with its undo, arms its end, then applies the change
        answer = self._mgr({"op": "change", "change": json.loads(change.to_json()),
                            "lease": dataclasses.asdict(lease)}, 5.0)
        return float(self._ok(answer, f"{lease.fault}: {change.describe()}")["hit"])

    def _undo(self, lease: Lease, change: Change) -> float:
        answer = self._ok(self._mgr({"op": "release", "id": lease.id, "by": "harness"}, 5.0),
                          f"undo of {change.describe()}")
        if answer.get("by") not in (None, "harness"):
            log.warning("%s: the host had already ended %s (by %s)", self.spec.url, lease.describe(), answer["by"])
        return float(answer["resumed"])

    def preflight(self) -> list[str]:
        if in_memory(self.root):
            return []
        return [f"the host's root {self.root} is on a disk, not in memory: its guests' disks wait for that disk's "
                "journal, so other writers there stall them all at once (false alarms); leave ?dir= unset "
                f"({MEMORY_FS}) or give a tmpfs"]

    def swap_lease(self, expected: str, new: str) -> str:
        """The host lease is ``ROOT/host.lease``: read, compared and replaced (renamed into place)
        under an exclusive flock of ``ROOT/host.lease.lock``, which the kernel drops if we die."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = Path(self.root, "host.lease")
        with open(path.with_name("host.lease.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                found = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                found = ""
            if found == expected:
                if new:
                    write_atomic(path, new)
                else:
                    path.unlink(missing_ok=True)
            return found

    # -- what killed runs left behind ----------------------------------------------------------
    def recover(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        said = recover_journal(self.root)
        for run_dir in sorted(Path(self.root).glob("wsim-*")):
            try:
                owner = Owner(**json.loads(Path(paths.owner(str(run_dir))).read_text()))
            except (OSError, ValueError, TypeError):
                continue  # not one of ours, or still being made
            if owner.alive() is not False:
                continue
            killed = sweep(str(run_dir))
            paths.remove(str(run_dir))
            what = "ended" if os.path.exists(paths.kept(str(run_dir))) else "removed"
            said.append(f"{what} the sim host {run_dir.name} of {owner}, which is gone ({killed} processes ended)")
        return said

    def health(self, role: str, guest: str | None = None) -> Health:
        try:
            status = self._mgr({"op": "status"}, 0.5)
            if status.get("state") != "running":
                return Health(False)
            where = self._where(self._target(role, guest), status)
            answer = request(where["sockets"][role], {"op": "ping"}, 0.25)
        except (OSError, HostError, KeyError, ValueError):
            return Health(False)
        return Health(bool(answer.get("ok")), float(where["ready_t"]))

    # -- observation -------------------------------------------------------------------------
    def progress(self) -> Mapping[Pair, list[float]]:
        for name in [g.name for g in self.guests] + [DOM0]:  # dom0's: its toolstack probe's
            path = paths.records(self.run_dir, name)
            try:
                with open(path, "rb") as fh:
                    fh.seek(self._offsets.get(name, 0))
                    data = self._partial.pop(name, b"") + fh.read()
                    self._offsets[name] = fh.tell()
            except FileNotFoundError:
                continue
            lines = data.split(b"\n")
            if lines[-1]:
                self._partial[name] = lines[-1]
            for line in lines[:-1]:
                t, device, seq, *took = line.decode().split()
                if device == "boot":
                    continue
                self._progress.setdefault((name, device), []).append(float(t))
                if took:
                    self._latency.setdefault((name, device), []).append((float(t), float(took[0])))
                if device == "disk":
                    self._acked.setdefault(name, []).append(int(seq))
        return self._progress

    def latencies(self) -> Mapping[Pair, list[tuple[float, float]]]:
        self.progress()
        return self._latency

    def cpu_busy(self) -> Mapping[str, float]:
        return vcpu.busy(self.run_dir)

    def device_states(self) -> list[DeviceState]:
        try:
            return DeviceState.parse(Path(paths.states(self.run_dir)).read_text())
        except FileNotFoundError:
            return []

    def acked_writes_lost(self) -> int:
        self.progress()
        lost = 0
        for name, seqs in self._acked.items():
            with open(paths.disk(self.run_dir, name), "rb") as fh:
                data = fh.read()
            lost += sum(data[s * BLOCK:(s + 1) * BLOCK] != block(name, s) for s in seqs)
        return lost

    def host_reboots(self) -> int:
        return int(self.status()["boots"]) - 1

