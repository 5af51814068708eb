"""A guest: frontends that do the xenbus handshake, and workloads that record every completed
operation, with a monotonic timestamp, in the guest's own record file (a channel that does not
pass through any service domain). A frontend whose backend dies reconnects by itself when a
backend offers again, and retries its in-flight request; a disk write counts only once acked.

The guest has one vCPU (`Vcpu`): an emulated I/O request holds it until a device model answers
it, and a console write holds it while the console's ring is full (`ConsoleWork`), so while one
is unanswered (its device model or console stopped, or gone and not yet replaced) nothing else of
the guest runs, as measured on Xen 4.17 (docs/design.md); the other workloads pass through the
vCPU before each operation."""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.sim import paths
from harness.sim.changes import raised
from harness.sim.proto import Channel
from harness.sim.spawn import announce
from harness.sim.storm import Storm
from harness.sim.xenbus import Frontend
from harness.sim.xsclient import XsClient

BLOCK = 64
RETRY_S, UNREACHABLE_RETRY_S = 0.25, 0.01  # a ping with no pong is sent again; one to a peer not there yet, soon
# hvc_xen's 2 KiB ring holds ≈ 12 cadences of a lab guest's console output (its records pass
# through it: ≈ 3 s at 250 ms); sim's holds the same number of its own cadences
RING_LINES = 12
FLOOD_DEPTH = 32  # a noisy neighbour's requests in flight at once (blkfront's ring: 32 slots)
PROBE_CADENCES = 5  # the xenstore probe's period, in cadences (6 guests at sim's 10 ms: 240 requests/s)
KIND = {"net": "vif", "disk": "vbd", "console": "console", "emul": "dm"}


def block(name: str, seq: int) -> bytes:
    """The content of block `seq` of guest `name`'s disk (what the acked-write check expects)."""
    tag = hashlib.sha1(f"{name}:{seq}".encode()).hexdigest()[:16]
    return f"{name} {seq} {tag}".ljust(BLOCK - 1).encode() + b"\n"


class Vcpu:
    """The guest's one vCPU, as its workloads see it."""

    def __init__(self, stop: threading.Event) -> None:
        self.lock, self.stop = threading.Lock(), stop

    def take(self) -> bool:
        """Hold the vCPU (False once the guest is stopping)."""
        while not self.lock.acquire(timeout=0.1):
            if self.stop.is_set():
                return False
        return True

    def run(self) -> bool:
        """Wait until the vCPU is free to run this workload (False once the guest is stopping)."""
        if not self.take():
            return False
        self.lock.release()
        return True


class Broken(OSError):
    """The data path went away."""


class IoError(Exception):
    """The backend answered the request with an error (EIO): the guest sees it, records it, and
    tries the same operation again at its next tick, on the same connection."""


class Recorder:
    """``TIME DEVICE SEQ [SECONDS]``: a completed operation, and how long it took (the QoS suite's
    per-operation latency; harness/qos.py)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(self, device: str, seq: int, took: float | None = None) -> None:
        tail = "" if took is None else f" {took:.6f}"
        os.write(self.fd, f"{time.monotonic():.6f} {device} {seq}{tail}\n".encode())


class Flooded:
    """The flood's own records, ``DEVICE-flood N`` for each of its requests answered (the harness's
    proof that a noisy neighbour really flooded: harness/qos.py)."""

    def __init__(self, rec: Recorder, device: str) -> None:
        self.rec, self.device, self.sent = rec, device, 0

    def __call__(self, n: int) -> None:
        for _ in range(n):
            self.rec.record(f"{self.device}-flood", self.sent)
            self.sent += 1


class Ticker:
    """A fixed cadence that never bursts to catch up after an outage; none while `flooding` says so
    (a noisy neighbour: the change ``flood``)."""

    def __init__(self, cadence: float, phase: float, stop: threading.Event,
                 flooding: Callable[[], bool] = lambda: False) -> None:
        self.cadence, self.stop, self.flooding = cadence, stop, flooding
        self.next = time.monotonic() + phase

    def wait(self) -> None:
        now = time.monotonic()
        if self.flooding():
            self.next = now + self.cadence
            return
        if self.next > now:
            self.stop.wait(self.next - now)
        self.next = max(self.next + self.cadence, time.monotonic())


def _answer(chan: Channel) -> dict[str, Any]:
    msg = chan.recv()
    if msg is None:
        raise Broken("backend closed the ring")
    return msg


class Workload:
    device = ""
    flooding: Callable[[], bool] = staticmethod(lambda: False)  # a noisy neighbour now (the change flood)
    flooded: Callable[[int], None] = staticmethod(lambda n: None)  # `n` more requests of the flood sent

    @property
    def holds_vcpu(self) -> bool:
        """Does the next operation hold the vCPU until it completes (an emulated request)?"""
        return False

    def attach(self, chan: Channel) -> None:
        pass

    def first_seq(self, chan: Channel) -> int:
        return 0

    def op(self, chan: Channel, seq: int) -> None:
        chan.send({"seq": seq, "line": f"{self.device} {seq}"})
        _answer(chan)


class ConsoleWork(Workload):
    """Lines written to the PV console's ring, as Linux's hvc_xen does: a write returns once the
    line is in the ring, and the console backend takes lines out of it (its ack). While the ring
    is full, the write spins with the vCPU held (hvc_xen waits for room with interrupts off), so a
    console backend stopped or gone stops its guest whole once the ring fills (measured on Xen
    4.17: docs/design.md). A new backend finds the lines still in the ring (they are the guest's
    memory) and takes them."""

    device = "console"

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.ring: list[int] = []  # the seqs of lines in the ring, not yet taken by the backend
        self.acks: queue.Queue[int] = queue.Queue()

    @property
    def holds_vcpu(self) -> bool:  # the next write must wait for room
        self._take_acks(block=False)
        return len(self.ring) >= RING_LINES

    def attach(self, chan: Channel) -> None:
        self.acks = acks = queue.Queue[int]()
        threading.Thread(target=self._rx, args=(chan, acks), daemon=True).start()
        for seq in self.ring:  # what the dead backend had not taken yet
            chan.send({"seq": seq, "line": f"{self.device} {seq}"})

    def _rx(self, chan: Channel, acks: queue.Queue[int]) -> None:
        try:
            while (msg := chan.recv()) is not None:
                acks.put(int(msg.get("seq", -2)))
        except (OSError, ValueError):
            pass
        acks.put(-1)

    def _take_acks(self, block: bool) -> None:
        while True:
            try:
                seq = self.acks.get(timeout=0.1) if block else self.acks.get_nowait()
            except queue.Empty:
                if block and not self.stop.is_set():
                    continue
                return
            if seq == -1:
                raise Broken("the console backend closed the ring")
            self.ring = [s for s in self.ring if s > seq]
            block = False

    def op(self, chan: Channel, seq: int) -> None:
        while len(self.ring) >= RING_LINES and not self.stop.is_set():
            self._take_acks(block=True)
        chan.send({"seq": seq, "line": f"{self.device} {seq}"})
        self.ring.append(seq)


class EmulWork(Workload):
    device = "emul"

    @property
    def holds_vcpu(self) -> bool:  # the vCPU waits for the device model's answer
        return True


class DiskWork(Workload):
    device = "disk"

    def __init__(self, name: str, rec: Recorder) -> None:
        self.name, self.rec = name, rec

    def first_seq(self, chan: Channel) -> int:
        chan.send({"op": "size"})
        return int(_answer(chan)["size"]) // BLOCK

    def op(self, chan: Channel, seq: int) -> None:
        if self.flooding():  # a full ring of reads ahead of each write (a noisy neighbour)
            for _ in range(FLOOD_DEPTH):
                chan.send({"op": "read", "seq": -1, "off": 0, "len": BLOCK})
            for _ in range(FLOOD_DEPTH):
                _answer(chan)
            self.flooded(FLOOD_DEPTH)
        data = block(self.name, seq)
        chan.send({"op": "write", "seq": seq, "off": seq * BLOCK, "data": data.hex()})
        answer = _answer(chan)
        if answer.get("error") == "EIO":
            raise IoError("write")
        if not answer.get("ok"):
            raise Broken("write refused")
        chan.send({"op": "read", "seq": seq, "off": seq * BLOCK, "len": BLOCK})
        answer = _answer(chan)
        if answer.get("error") == "EIO":
            raise IoError("read")
        if bytes.fromhex(answer["data"]) != data:
            self.rec.record("disk-corrupt", seq)


class NetWork(Workload):
    """Echo with a peer guest through netback: ping it, count the pong."""

    device = "net"

    def __init__(self, mac: str, peer: str) -> None:
        self.mac, self.peer = mac, peer
        self.pongs: queue.Queue[int] = queue.Queue()

    def attach(self, chan: Channel) -> None:
        self.pongs = pongs = queue.Queue[int]()
        threading.Thread(target=self._rx, args=(chan, pongs), daemon=True).start()

    def _rx(self, chan: Channel, pongs: queue.Queue[int]) -> None:
        try:
            while (frame := chan.recv()) is not None:
                if frame.get("t") == "ping":
                    chan.send({"dst": frame["src"], "src": self.mac, "t": "pong", "seq": frame["seq"]})
                elif frame.get("t") == "pong":
                    pongs.put(int(frame["seq"]))
                elif frame.get("t") == "unreachable":
                    pongs.put(-(int(frame["seq"]) + 2))
        except (OSError, ValueError):
            pass
        pongs.put(-1)

    def op(self, chan: Channel, seq: int) -> None:
        """Ping until the pong comes: a lost ping is sent again after 250 ms; one that netback
        could not deliver (the peer is not attached yet, as at boot) after 10 ms. A noisy
        neighbour sends a full ring of frames to itself first (its rx drops them)."""
        if self.flooding():
            for _ in range(FLOOD_DEPTH):
                chan.send({"dst": self.mac, "src": self.mac, "t": "flood", "seq": seq})
            self.flooded(FLOOD_DEPTH)
        while True:
            chan.send({"dst": self.peer, "src": self.mac, "t": "ping", "seq": seq})
            deadline = time.monotonic() + RETRY_S
            while (left := deadline - time.monotonic()) > 0:
                try:
                    got = self.pongs.get(timeout=left)
                except queue.Empty:
                    break
                if got == -1:
                    raise Broken("netback closed the ring")
                if got == seq:
                    return
                if got == -(seq + 2):  # unreachable
                    deadline = min(deadline, time.monotonic() + UNREACHABLE_RETRY_S)


def device_loop(fe: Frontend, work: Workload, rec: Recorder, ticker: Ticker, vcpu: Vcpu) -> None:
    seq: int | None = None
    held = False  # an emulated request not answered yet: the vCPU stays with it, reconnects included
    try:
        while not ticker.stop.is_set():
            chan = fe.connect()
            if chan is None:
                return
            try:
                work.attach(chan)
                if seq is None:
                    seq = work.first_seq(chan)
                while True:
                    ticker.wait()
                    hold = work.holds_vcpu  # (a console: its ring is full)
                    if not (held or (vcpu.take() if hold else vcpu.run())):
                        return
                    held = held or hold
                    start = time.monotonic()
                    try:
                        work.op(chan, seq)  # an op cut by a dead backend is retried with the same seq
                    except IoError:
                        rec.record(f"{work.device}-eio", seq)  # seen by the guest, not acknowledged: again
                        continue
                    took = time.monotonic() - start
                    if held:
                        vcpu.lock.release()
                        held = False
                    rec.record(work.device, seq, took)
                    seq += 1
            except (OSError, ValueError, KeyError):
                chan.close()
    finally:
        if held:
            vcpu.lock.release()


def xs_probe(xs: XsClient, domid: int, rec: Recorder, ticker: Ticker, vcpu: Vcpu) -> None:
    """The guest's xenstore probe: a write and a read back of its own node each tick, recorded as
    ``xs`` (not a device: the harness reads how late its round trips came, `harness/metrics.py`)."""
    node, n = f"/local/domain/{domid}/data/probe", 0
    while not ticker.stop.is_set():
        ticker.wait()
        if not vcpu.run():
            return
        try:
            xs.write(node, n)
            if xs.read(node) == str(n):
                rec.record("xs", n)
                n += 1
        except OSError:
            pass  # xenstore is away: the probe's gap says for how long


def run_guest(cfg: dict[str, Any]) -> None:
    name, domid, run_dir = cfg["name"], int(cfg["domid"]), cfg["run_dir"]
    cadence = float(cfg["cadence"])
    rng = random.Random(f"{cfg.get('seed', 0)}:{name}")
    stop = threading.Event()
    rec = Recorder(paths.records(run_dir, name))
    rec.record("boot", int(cfg.get("boot", 0)))
    xs = XsClient(paths.xenstore(run_dir), stop, guest=domid)
    vcpu = Vcpu(stop)
    works: list[Workload] = []
    for device in cfg["devices"]:
        if device == "net":
            works.append(NetWork(cfg["mac"], cfg["peer_mac"]))
        elif device == "disk":
            works.append(DiskWork(name, rec))
        elif device == "console":
            works.append(ConsoleWork(stop))
        elif device == "emul":
            works.append(EmulWork())
    for work in works:
        fe = Frontend(xs, domid, KIND[work.device])
        work.flooding = functools.partial(raised, run_dir, "flood", f"{name}-{work.device}")
        work.flooded = Flooded(rec, work.device)
        ticker = Ticker(cadence, rng.uniform(0, cadence), stop, work.flooding)
        threading.Thread(target=device_loop, args=(fe, work, rec, ticker, vcpu), daemon=True).start()
    probe = Ticker(cadence * PROBE_CADENCES, rng.uniform(0, cadence), stop)
    threading.Thread(target=xs_probe, args=(xs, domid, rec, probe, vcpu), name="xs-probe", daemon=True).start()
    announce({"name": name})
    beat = Ticker(cadence, rng.uniform(0, cadence), stop)
    storm = Storm(xs, domid, run_dir, name, stop, rec.record)
    n = 0
    while not stop.is_set():
        beat.wait()
        if not vcpu.run():
            break
        rec.record("heartbeat", n)
        storm.check()
        n += 1
