"""The process roles of a Xen host's control domain: xenstore (``oxenstored`` or ``xenstored``,
whichever runs), the console (``xenconsoled``), the toolstack (the recovery agent
``windsor-agent`` and xl's per-domain monitors, the ``xl create`` children that answer a domain's
crash or reboot) and, where the topology keeps it in dom0, each HVM guest's device model
(Debian's QEMU, ``qemu-GUEST`` as a target's process, found by its ``-xen-domid``; elsewhere it is
libxl's stub domain ``GUEST-dm``, a domain like a driver domain). Debian's Xen has no stub domains
for the daemons, so they live in dom0 whatever the topology says: a fault hits the processes,
never dom0's kernel.

- kill: SIGKILL. Nothing of Xen's restarts any of them. The recovery agent (windsor-agent)
  starts a dead ``xenconsoled`` again with the command line it had, as a supervisor would; a dead
  xenstored cannot be restarted in Xen 4.17 (no live-update state), so the role never answers
  again: the host needs a reboot (`XenHost` reboots a test host before it uses it again). A dead
  device model leaves its guest frozen for good: a new QEMU cannot take over the I/O request the
  dead one held (measured: docs/design.md), so nothing restarts it.
- toolstack: a kill is a SIGKILL of the agent and of every xl monitor. The agent runs under a
  keeper (windsor-topo), as a toolstack runs under its supervisor, which starts it again after
  1 s; xl's monitors cannot be given back to running domains (xl has no command for it): from
  then on a crashed driver domain is rebuilt by the agent's own fallback, not by xl's
  ``on_crash``. A stall stops them all (the agent and the monitors).
- stall: SIGSTOP, undone by SIGCONT (journalled by windsor-lease like every change).
- throttle and memory pressure of one dom0 process: not here (they need cgroups on the host).

Health is the process answering, not only running: a stopped process is not healthy, and xenstored
must answer a read within `ANSWER_S`. Its ``ready_since`` is when the running process started (host
wallclock, from /proc: 10 ms), so a restarted daemon is told from the one that was hit; the
agent's is when it said it was ready (it first lists the driver domains: 18 s after its start on
the lab, under TCG).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from harness.errors import HostError
from harness.waiting import wait_until
from harness.xen.remote import Remote, q

log = logging.getLogger("windsor.xen")

ROLES: Mapping[str, tuple[str, ...]] = {"xenstore": ("oxenstored", "xenstored"), "console": ("xenconsoled",),
                                        "toolstack": ("windsor-agent",)}
TOOLSTACK = "toolstack"
# xl's per-domain monitors: the daemonized children of `xl create` (without -e), named by xl's path
# (Debian: /usr/lib/xen-4.17/bin/xl create -q CFG); `^`: never a shell's line
MONITORS = "'^([^ ]*/)?xl create '"
ANSWER_S = 3

DEVICE_MODEL = "device-model"
# process $p: its pid, its state letter and when it started (host wallclock)
_STARTED = ("s=$(sed 's/.*) //' /proc/$p/stat) || exit 1; "
            "set -- $s; st=$1; shift 19; read up _ </proc/uptime; "
            "awk -v p=$p -v st=$st -v now=$(date +%s.%N) -v up=$up -v t=$1 -v hz=$(getconf CLK_TCK) "
            "'BEGIN { printf \"%s %s %.3f\\n\", p, st, now - up + t / hz }'")


def daemon(role: str) -> str:
    """The shell words that set $n to the role's daemon name on the host (the first one running,
    else the first the role knows)."""
    names = ROLES[role]
    each = " ".join(q(n) for n in names)
    return (f"n=$(for x in {each}; do pgrep -x \"$x\" >/dev/null && {{ echo \"$x\"; break; }}; done); "
            f"n=${{n:-{q(names[0])}}}")


def process(role: str, guest: str | None = None) -> str:
    """The process's generic name, as a target's process (``xenstored``, ``xenconsoled``,
    ``windsor-agent``, ``qemu-GUEST``)."""
    if role == DEVICE_MODEL:
        return f"qemu-{guest}"
    return "xenstored" if role == "xenstore" else ROLES[role][0]


def pid(role: str, guest: str | None = None) -> str:
    """The shell words that set $p to the role's process (exit 1 if none runs): the oldest daemon
    of its name, or the QEMU whose ``-xen-domid`` is the guest's (``[x]``: not the shell's own line)."""
    if role == DEVICE_MODEL:
        return f"d=$(xl domid {q(guest or '')} 2>/dev/null) && p=$(pgrep -o -f \"[x]en-domid $d \") || exit 1"
    return f"{daemon(role)}; p=$(pgrep -xo \"$n\") || exit 1"


def started(role: str, guest: str | None = None) -> str:
    """A command printing "PID STATE STARTED" of the role's process; exit 1 if none runs."""
    return f"{pid(role, guest)}; {_STARTED}"


def health(role: str, guest: str | None = None) -> str:
    """A command printing the process's start time if it runs, is not stopped, and (xenstore)
    answers a read; exit non-zero otherwise."""
    answers = f" && timeout {ANSWER_S} xenstore-read /local/domain/0/name >/dev/null" if role == "xenstore" else ""
    since = "echo $3"
    if role == TOOLSTACK:  # since the running agent said it is ready (its pid and when, windsor-agent)
        since = "read rp rt </run/windsor-agent/ready && [ \"$rp\" = \"$1\" ] && echo $rt"
    return (f"out=$({started(role, guest)}) && set -- $out && [ \"$2\" != T ] && [ \"$2\" != t ]{answers} "
            f"&& {since}")


def _signal(role: str, sig: str) -> str:
    """Send `sig` to the role's process ($p); the toolstack's: to every agent process (its console
    keeper too) and every xl monitor."""
    if role == TOOLSTACK:
        return f"pkill -{sig} -x windsor-agent; pkill -{sig} -f {MONITORS}; true"
    return f"kill -{sig} $p"


def kill(role: str, guest: str | None = None) -> str:
    return f"{pid(role, guest)}; {_signal(role, 'KILL')}"


def pause(role: str, guest: str | None = None) -> tuple[str, str]:
    """(undo, apply) of a stall of the role's processes (the undo harmless when they are gone)."""
    find = "" if role == TOOLSTACK else pid(role, guest).replace("exit 1", "exit 0") + "; "
    return f"{find}{_signal(role, 'CONT')}; true", f"{pid(role, guest)}; {_signal(role, 'STOP')}"


def monitors() -> str:
    """A command printing how many xl monitors run."""
    return f"pgrep -c -f {MONITORS} || true"


def role_of(process_name: str | None) -> str | None:
    """The role whose process a target's process is (None: not one of ours)."""
    if process_name is not None and process_name.startswith("qemu-"):
        return DEVICE_MODEL
    return next((r for r in ROLES if process_name is not None and process(r) == process_name), None)


def running(role: str) -> str:
    """A command that exits 0 when the role's daemon runs (stopped or not)."""
    return f"{daemon(role)}; pgrep -x \"$n\" >/dev/null"


# a reboot of the control domain now (Xen then resets the machine): after the command returned
REBOOT = "(sleep 0.5; echo b > /proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &"


def repair(remote: Remote, url: str, test_host: bool, boot_id: Callable[[], str], timeout_s: float) -> None:
    """A control domain whose xenstored died (a kill: Xen 4.17 cannot start it again): a test
    host is rebooted, and this returns once it is back; any other host is refused in one line."""
    if remote.run(running("xenstore"), timeout=15).ok:
        return
    if not test_host:
        raise HostError(f"{url}: xenstored is not running in the control domain: reboot the host")
    log.warning("%s: xenstored is gone (Xen 4.17 cannot start it again): rebooting the host", url)
    before = boot_id()
    remote.run(REBOOT, timeout=10)

    def back() -> bool:
        now_id = boot_id()
        return bool(now_id) and now_id != before and remote.run("cat /run/windsor-ready", timeout=10).ok

    if not wait_until("the host back after its reboot", back, timeout_s):
        raise HostError(f"{url}: not back {timeout_s:.0f}s after a reboot")
