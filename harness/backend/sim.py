"""``sim://`` — the embedded Windsor host: every domain a real process (its own process group),
every role a real service over Unix sockets, faults real signals (psutil).

URL parameters: ``sim://?dir=/path`` (where run dirs go; default the system temp dir),
``sim://?keep=1`` (keep the run dir with records, disks and logs after shutdown).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

from harness.backend.base import Entity, Health, Host, HostSpec, Target
from harness.errors import HostError, UsageError
from harness.model import KERNEL_ROLES, ROLES, GuestSpec, Pair, peers
from harness.sim import paths
from harness.sim.dom0 import PROC_NAMES
from harness.sim.guest import BLOCK, block
from harness.sim.proto import Msg, request
from harness.sim.spawn import SpawnError, wait_ready
from harness.topology import Topology
from harness.waiting import wait_until

MARKER = "WINDSOR_SIM_HOST"
REPO_ROOT = str(Path(__file__).resolve().parents[2])


class SimHost(Host):
    def __init__(self, spec: HostSpec) -> None:
        super().__init__(spec)
        unknown = set(spec.params) - {"dir", "keep"}
        if unknown or spec.host or spec.port:
            raise UsageError(f"sim:// takes no host and only ?dir=...&keep=1, not {spec.url!r}")
        self.base_dir = spec.params.get("dir") or None
        self.keep = spec.params.get("keep", "") in ("1", "true", "yes")
        self.run_dir = ""
        self.manager: subprocess.Popen[bytes] | None = None
        self.topology: Topology | None = None
        self.guests: tuple[GuestSpec, ...] = ()
        self._offsets: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self._progress: dict[Pair, list[float]] = {}
        self._acked: dict[str, list[int]] = {}
        self._paused: dict[str, list[psutil.Process]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def boot(self, topology: Topology, guests: Sequence[GuestSpec], cadence: float, seed: int) -> None:
        if self.base_dir:
            os.makedirs(self.base_dir, exist_ok=True)
        self.run_dir = tempfile.mkdtemp(prefix="wsim-", dir=self.base_dir)
        self.topology, self.guests = topology, tuple(guests)
        paths.make(self.run_dir)
        env = {**os.environ, MARKER: self.run_dir,
               "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
        cfg = {"topology": topology.as_dict(), "roles": list(ROLES), "parent": os.getpid()}
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
            if not self.keep:
                shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- state -------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def _mgr(self, msg: Msg, timeout: float = 2.0) -> Msg:
        return request(paths.manager(self.run_dir), msg, timeout)

    def _ok(self, answer: Msg, what: str) -> Msg:
        if not answer.get("ok"):
            raise HostError(f"sim:// {what} failed: {answer.get('error')} (logs in {self.run_dir}/log)")
        return answer

    def status(self) -> Msg:
        return self._ok(self._mgr({"op": "status"}), "status")

    def entities(self) -> tuple[Entity, ...]:
        out = []
        for dom in self.status()["domains"]:
            out.append(Entity(dom["name"], f"{dom['pid']}@{dom['create_time']}"))
            for proc, info in dom["procs"].items():
                out.append(Entity(f"{dom['name']}/{proc}", str(info["pid"])))
        return tuple(sorted(out, key=lambda e: e.name))

    def _target(self, role: str, guest: str | None) -> Target:
        """Where the topology puts a role: a domain, or (process roles in dom0) a dom0 process."""
        if self.topology is None:
            raise HostError("sim:// host is not booted")
        domain = self.topology.domain_of(role, guest)
        process = None
        if domain == "dom0" and role not in KERNEL_ROLES:
            process = f"qemu-{guest}" if role == "device-model" else PROC_NAMES[role]
        return Target(role, domain, process, guest)

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
        if not wait_until(f"{target.entity} to die", lambda: all(map(_dead, procs)), 5.0, quiet=True):
            raise HostError(f"{target.entity} survived SIGKILL for 5s")
        return hit

    def pause(self, target: Target, lease_s: float | None = None) -> float:
        procs = self._tree(target)
        self._paused[target.entity] = procs
        hit = self.now()
        for proc in procs:
            proc.suspend()
        return hit

    def unpause(self, target: Target) -> float:
        resumed = self.now()
        for proc in self._paused.pop(target.entity, []):
            try:
                proc.resume()
            except psutil.NoSuchProcess:
                pass
        return resumed

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
        for g in self.guests:
            path = paths.records(self.run_dir, g.name)
            try:
                with open(path, "rb") as fh:
                    fh.seek(self._offsets.get(g.name, 0))
                    data = self._partial.pop(g.name, b"") + fh.read()
                    self._offsets[g.name] = fh.tell()
            except FileNotFoundError:
                continue
            lines = data.split(b"\n")
            if lines[-1]:
                self._partial[g.name] = lines[-1]
            for line in lines[:-1]:
                t, device, seq = line.decode().split()
                if device == "boot":
                    continue
                self._progress.setdefault((g.name, device), []).append(float(t))
                if device == "disk":
                    self._acked.setdefault(g.name, []).append(int(seq))
        return self._progress

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


def _dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie nobody has reaped yet (it runs no more)."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def sweep(run_dir: str) -> int:
    """Kill every process that belongs to the sim host in `run_dir`; return how many."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER) == run_dir:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in found:
        try:
            proc.kill()
        except psutil.Error:
            pass
    wait_until(f"{len(found)} leftover processes to die", lambda: all(map(_dead, found)), 5.0, quiet=True)
    return len(found)
