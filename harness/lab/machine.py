"""The lab machine: Xen 4.17 (Debian's packages) booted under QEMU/TCG on this host, dom0 reached
by ssh on a loopback-only forwarded port. State lives in the lab dir (``lab.json``), so `up`,
`status` and `down` can be separate commands.

Two kinds of dom0 (one lab at a time: two do not fit in 2 cores):
- ``windsor``: our own dom0, a debootstrapped root packed as an initramfs with the harness's tools
  baked in (harness/lab/build.py) and a state disk;
- ``stock``: a plain Debian Xen install on a disk image (harness/lab/stock.py), with nothing of
  ours — what a bare-metal runner is; ``windsor host prepare`` installs the tools over ssh.

QEMU writes the serial console (Xen's and dom0's) to ``serial.log`` itself, so nothing has to
keep reading a socket for the console not to back up.

A reset of the lab host (Xen reboots the machine when dom0 crashes) is a fresh QEMU: QEMU runs
with ``-no-reboot``, so it exits, and the lab's watchdog (harness/lab/watchdog.py) starts the
same command line again (`Lab.restart`) on the same disks, port and console. Reset in place, the
same QEMU took 82-154 s to unpack dom0's initramfs (5.7 s on a first boot).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import psutil

from harness.errors import HostError
from harness.lab.build import LabFiles, build, run
from harness.lab.watchdog import IDLE_S, idle_deadline, register
from harness.sim.sweep import dead
from harness.waiting import wait_until

log = logging.getLogger("windsor.lab")
DEFAULT_DIR = Path(os.environ.get("WINDSOR_LAB_DIR", "~/.cache/windsor/lab")).expanduser()
READY = b"WINDSOR: dom0 ready"
BOOT_TIMEOUT_S = 180.0
RESTART_WAIT_S = 10.0  # the watchdog starts a fresh QEMU within about a second of a reset
STATE_DISK_MB = 512
# dom0 is an initramfs of ≈ 300 MB: at 1024M its kernel could not unpack it (with qemu-system-xen)
XEN_ARGS = ("dom0_mem=1536M,max:1536M dom0_max_vcpus=2 console=com1 com1=115200,8n1 loglvl=all "
            "guest_loglvl=all console_timestamps=boot smap=0 smep=0")  # TCG: dom0 dies without smap/smep=0
DOM0_ARGS = "console=hvc0 earlyprintk=xen rdinit=/init"


DOM0_KINDS = ("windsor", "stock")


@dataclass(frozen=True)
class LabState:
    pid: int
    port: int
    started: float  # time.time() at QEMU start
    ready_s: float  # QEMU start → dom0 ready
    dom0: str = "windsor"
    keep: bool = False  # stays up after the sessions that use it end, until idle_s without one
    idle_s: float = IDLE_S
    argv: tuple[str, ...] = ()  # QEMU's command line: the watchdog runs it again when the host resets
    sources: str = ""  # what its images were built from (`sources_digest`)

    @property
    def url(self) -> str:
        """The lab's dom0 as a plain Xen host URL (what a bare-metal runner is)."""
        return f"xen+ssh://root@127.0.0.1:{self.port}"


def sources_digest() -> str:
    """A digest of what the lab's images are built from (harness/lab/files: the inits, wrec.c...):
    a lab booted from other sources runs other guests than this harness expects."""
    digest = hashlib.sha256()
    files = Path(__file__).parent / "files"
    for path in sorted(files.iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


class Lab:
    def __init__(self, root: Path = DEFAULT_DIR, dom0: str = "windsor") -> None:
        if dom0 not in DOM0_KINDS:
            raise HostError(f"lab: unknown dom0 {dom0!r} (one of {', '.join(DOM0_KINDS)})")
        self.root = root
        self.dom0 = dom0
        self.files = LabFiles.at(root)
        self.state_file = root / "lab.json"
        self.serial = root / "serial.log"

    def saved(self) -> LabState | None:
        """The lab as `lab.json` records it, whether its QEMU runs or not (None: no lab)."""
        try:
            data = json.loads(self.state_file.read_text())
            return LabState(**{**data, "argv": tuple(data.get("argv", ()))})
        except (OSError, ValueError, TypeError):
            return None

    def state(self) -> LabState | None:
        """The running lab, or None. The record of a QEMU that exited stays: its watchdog may be
        starting a fresh one (a reset of the lab host); `up` writes over it, `down` removes it."""
        state = self.saved()
        return state if state is not None and qemu_runs(state.pid) else None

    def ssh_options(self, state: LabState) -> str:
        """ssh options for dom0: a throwaway host key, keep-alives that drop a dead host within
        ~6 s, and one multiplexed connection (a handshake costs ≈ 2.5 s under TCG)."""
        return ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
                "-o ConnectTimeout=5 -o BatchMode=yes -o ServerAliveInterval=2 -o ServerAliveCountMax=3 "
                f"-o ControlMaster=auto -o ControlPath={self.root}/ssh-{state.port}.sock -o ControlPersist=300")

    def ssh_argv(self, state: LabState, command: str, timeout_s: float = 30) -> list[str]:
        return ["timeout", "-k", "5", str(timeout_s), "ssh", "-i", str(self.files.key), "-p", str(state.port),
                *self.ssh_options(state).split(), "root@127.0.0.1", command]

    def ssh(self, command: str, timeout_s: float = 30) -> subprocess.CompletedProcess[str]:
        state = self.state()
        if state is None:
            raise HostError("the lab is not running: windsor lab up")
        return subprocess.run(self.ssh_argv(state, command, timeout_s), capture_output=True, text=True)

    def up(self, keep: bool = False, idle_s: float = IDLE_S) -> LabState:
        """Build (cached) and boot the lab unless it runs; return when dom0 answers over ssh. This
        process is registered as a user: the watchdog stops the lab once no user is alive, or, if
        it is kept (`keep` here or by an earlier user), `idle_s` after the last one ended."""
        running = self.state()
        if running is None and self.saved() is not None:  # its QEMU exited: a reset being restarted?
            wait_until("the lab's fresh QEMU after a reset", lambda: self.state() is not None, RESTART_WAIT_S)
            running = self.state()
        if running is not None:
            if running.dom0 != self.dom0:
                raise HostError(f"lab: the {running.dom0} lab is running (pid {running.pid}); two do not fit here: "
                                "windsor lab down first")
            if running.dom0 == "windsor" and running.sources not in ("", sources_digest()):
                raise HostError(f"lab: the running lab (pid {running.pid}) was built from other sources than "
                                "harness/lab/files now (its guests would run other tools): windsor lab down, then "
                                "run again")
            register(self.root)
            if keep and not (running.keep and running.idle_s == idle_s):
                running = replace(running, keep=True, idle_s=idle_s)
                self._save(running)
            log.info("lab: already running (pid %d, ssh port %d)", running.pid, running.port)
            return running
        state = self._up_stock() if self.dom0 == "stock" else self._up_windsor()
        state = replace(state, keep=keep, idle_s=idle_s)
        self._save(state)
        return state

    def lifetime(self, state: LabState) -> str:
        """When the running lab will stop by itself, in one line."""
        if not state.keep:
            return (f"lab: QEMU pid {state.pid} stops when the last session using it ends "
                    "(lab://?keep=1 keeps it; windsor lab down stops it now)")
        deadline = idle_deadline(self.root, state.idle_s)
        when = "" if deadline is None else f", at {time.strftime('%H:%M', time.localtime(deadline))} if unused"
        return (f"lab: kept: QEMU pid {state.pid} stops by itself after {state.idle_s / 60:g} min without a "
                f"session{when} (windsor lab down stops it now)")

    def _save(self, state: LabState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, self.state_file)

    def _watchdog(self, pid: int) -> None:
        """Register this process, then start the watchdog of QEMU `pid` (harness/lab/watchdog.py)."""
        register(self.root)
        with open(self.root / "watchdog.log", "ab") as err:
            subprocess.Popen([sys.executable, "-m", "harness.lab.watchdog", str(self.root), str(pid)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))

    def _up_windsor(self) -> LabState:
        files, _ = build(self.root)
        port = free_port()
        # the state disk: the topology plan and the guests' disks, which a reboot of the lab host
        # (a dom0 crash) must not lose; fresh for every `lab up`
        files.state.unlink(missing_ok=True)
        with open(files.state, "wb") as disk:
            disk.truncate(STATE_DISK_MB << 20)
        run("mkfs.ext4", "-q", "-F", "-L", "windsor-state", str(files.state))
        self.serial.unlink(missing_ok=True)
        started = time.time()
        argv = [
            *self._qemu(port),
            "-drive", f"file={files.state},if=virtio,format=raw,cache=writeback",
            "-kernel", str(files.xen), "-append", XEN_ARGS,
            "-initrd", f"{files.vmlinuz} {DOM0_ARGS},{files.dom0_cpio}",
        ]
        pid = self._start(argv, port)
        self._save(LabState(pid, port, started, 0.0, argv=tuple(argv)))
        self._watchdog(pid)
        if not wait_until("dom0 ready on the serial console", self._booted, BOOT_TIMEOUT_S):
            self._stop(pid)
            raise HostError(f"lab: dom0 not ready within {BOOT_TIMEOUT_S:.0f}s; console in {self.serial}")
        state = LabState(pid, port, started, time.time() - started, argv=tuple(argv), sources=sources_digest())
        self._save(state)
        if not wait_until("ssh into dom0", lambda: self.ssh("true", 15).returncode == 0, 60):
            self.down()
            raise HostError("lab: dom0 booted but does not answer ssh")
        log.info("lab: dom0 ready %.1fs after QEMU start", state.ready_s)
        return state

    def _qemu(self, port: int) -> list[str]:
        """QEMU's machine, console and network, the same for both kinds of dom0."""
        return [
            # avx/avx2 off: with TCG's AVX2, glibc's vectorised string routines corrupted memory in
            # dom0 ("corrupted double-linked list" from xl create, seen here in CI runs)
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max,xsave=off,avx=off,avx2=off", "-smp", "2", "-m", "4096",
            # -no-reboot: a reset of the lab host (Xen's reboot after a dom0 crash) ends this QEMU,
            # and the watchdog starts a fresh one (see the module); the console is appended to
            "-no-reboot", "-display", "none", "-nodefaults", "-daemonize", "-pidfile", str(self.root / "qemu.pid"),
            "-chardev", f"file,id=s0,path={self.serial},append=on", "-serial", "chardev:s0",
            # PCI slot 3: the stock dom0 names its NIC ens3 (its /etc/network/interfaces says so)
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=n0,addr=3",
        ]

    def _start(self, argv: list[str], port: int) -> int:
        """Run QEMU's (daemonizing) command line; its pid."""
        log.info("lab: booting Xen under QEMU, %s dom0 (ssh port %d)", self.dom0, port)
        (self.root / "qemu.pid").unlink(missing_ok=True)
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise HostError(f"lab: qemu did not start: {done.stderr.strip()[-300:]}")
        return int((self.root / "qemu.pid").read_text())

    def _up_stock(self) -> LabState:
        """The stock Debian Xen host: ready when its sshd answers and `xl info` works."""
        from harness.lab.stock import build_stock, qemu_boot_args

        stock = build_stock(self.root, self.files.key)
        port = free_port()
        self.serial.unlink(missing_ok=True)
        started = time.time()
        argv = (*self._qemu(port), *qemu_boot_args(stock, XEN_ARGS))
        pid = self._start(list(argv), port)
        self._save(LabState(pid, port, started, 0.0, "stock", argv=argv))
        self._watchdog(pid)

        def answers() -> bool:
            self._booted()  # a panic on the console ends the wait at once
            return self.ssh("xl info >/dev/null", 15).returncode == 0

        if not wait_until("the stock dom0's sshd and xl", answers, BOOT_TIMEOUT_S, interval=2.0):
            self.down()
            raise HostError(f"lab: the stock dom0 did not answer ssh with xl working within {BOOT_TIMEOUT_S:.0f}s; "
                            f"console in {self.serial}")
        state = LabState(pid, port, started, time.time() - started, "stock", argv=argv)
        self._save(state)
        log.info("lab: stock dom0 ready %.1fs after QEMU start: %s", state.ready_s, state.url)
        return state

    def restart(self, state: LabState) -> LabState:
        """After its QEMU exited by itself (a reset of the lab host): the same QEMU command line
        again, on the same disks and port; the new pid is recorded. HostError if QEMU does not
        start, or if the lab was taken down meanwhile (the new QEMU is stopped again)."""
        if not state.argv:
            raise HostError("lab: no QEMU command line recorded to start again")
        fresh = replace(state, pid=self._start(list(state.argv), state.port), started=time.time())
        if self.saved() != state:  # `down` (or a new lab) came between: this QEMU is nobody's
            self._stop(fresh.pid)
            raise HostError("lab: taken down while its host was resetting")
        self._save(fresh)
        return fresh

    def boots(self) -> int:
        """How many times dom0 came up since `up` (more than 1: the lab host rebooted)."""
        try:
            return self.serial.read_bytes().count(READY)
        except FileNotFoundError:
            return 0

    def _booted(self) -> bool:
        try:
            text = self.serial.read_bytes()
        except FileNotFoundError:
            return False
        if b"Kernel panic" in text or b"Panic on CPU" in text:
            raise HostError(f"lab: the lab host panicked while booting; console in {self.serial}")
        return READY in text

    def down(self) -> bool:
        """Stop the lab; False if it was not running."""
        state = self.saved()
        self.state_file.unlink(missing_ok=True)
        if state is None or not qemu_runs(state.pid):
            return False
        self._stop(state.pid)
        return True

    def _stop(self, pid: int) -> None:
        """SIGTERM, then SIGKILL after 10 s; gone once it is a zombie (a daemonized QEMU's parent is
        init, which a container may not run)."""
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            return

        if not wait_until(f"QEMU pid {pid} to stop", lambda: dead(proc), 10.0, quiet=True):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


def qemu_runs(pid: int) -> bool:
    """Is `pid` a QEMU that has not exited (a zombie has)?"""
    try:
        proc = psutil.Process(pid)
        return "qemu" in proc.name() and not dead(proc)
    except psutil.Error:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
