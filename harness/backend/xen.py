"""``xen+ssh://user@host[:port]`` and ``xen+local://`` — a real Xen host, driven through its own
tools (``xl``, ``xenstore-*``) over testinfra's ssh or local backend.

The control domain must carry the harness's tools and images under /opt/windsor (see
harness/xen/payload.py): ``windsor host prepare URL`` installs them on a stock Xen host, the lab's
own dom0 has them built in. A host whose tools are another version is refused at session start,
with the command that fixes it. Kernel roles (netback, blkback) run in driver domains when the
topology says so; xenstored and xenconsoled stay in dom0 (Debian's Xen has no stub domains) and
are faulted as dom0 processes (harness/xen/daemons.py), as are the toolstack (the recovery agent
and xl's domain monitors) and an HVM guest's device model where it is QEMU in dom0; where the
topology puts it in a stub domain (``device_model = "stubdom"``), it is that domain, ``GUEST-dm``,
faulted like a driver domain. Times are the host's
wallclock, which Xen shares with every PV domain: the guests' records carry it.

URL parameters: ``?inventory=FILE`` (host inventory, TOML: test host or not, dom0 faults allowed
or not, role → domain); ``?identity=FILE`` (ssh key).

Every stall is a lease in the control domain's journal (``windsor-lease``, harness/lab/files/):
journalled with its undo command before the domain is paused, ended by a detached watchdog there
when the lease runs out if the harness has not ended it — killed, or cut off from the host.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence

from harness.backend.base import ClaimBudget, Entity, Health, Host, HostSpec, Target
from harness.change import Change
from harness.errors import HostError, UsageError
from harness.lease import Lease
from harness.metrics import DOM0
from harness.model import KERNEL_ROLES, GuestSpec
from harness.topology import Topology
from harness.waiting import wait_until
from harness.xen import daemons, domains
from harness.xen.attempts import Attempts
from harness.xen.changes import commands, recover, uncap_dom0
from harness.xen.inventory import HostEntry, load_inventory
from harness.xen.observe import Observation
from harness.xen.payload import CURRENT, STATE, tool, tools_version
from harness.xen.plan import Plan, make_plan, xen_guests
from harness.xen.records import Records
from harness.xen.remote import Remote, q

log = logging.getLogger("windsor.xen")
TOPO_TIMEOUT_S = 300.0
DOM0_STALL_DELAY_S = 0.3  # lets the ssh command that starts a dom0 stall return first
DOM0_STALL_MAX_S = 600.0
# % of a CPU left to a stalled dom0: at 1 %, wstall itself woke 11 s after a 10 s lease
DOM0_STALL_CAP = 5
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}$){LABEL}(?:\.{LABEL})*$|^\[?[0-9A-Fa-f:.]{{2,45}}\]?$")
QEMU = "/usr/libexec/xen-qemu-system-i386"  # libxl's device model on Debian (qemu-system-xen)
XSWATCH_STOP = f"kill -- -$(cat {STATE}/xswatch.pid 2>/dev/null) 2>/dev/null; rm -f {STATE}/xswatch.pid"
USER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")


class XenHost(Attempts, Observation, Host):
    roles = ("netback", "blkback", *daemons.ROLES, daemons.DEVICE_MODEL)
    attackers = ("netback", "blkback", daemons.DEVICE_MODEL)  # (harness/isolation.py)
    capabilities = frozenset({"kill", "pause", "cap", "memory", "link-down", "disk-error", "xenstore-storm", "flood"})
    cpu_accounting = True  # credit2's cap for a topology's cpu_pct (harness/xen/plan.py), xl list's CPU time
    # Under TCG the lab's two CPUs are busy with 4 guests at the 250 ms cadence alone (dom0 ≈ 98 %
    # of one, each domain ≈ 20 %): the claims are measured at a 1 s cadence, each domain at half a
    # CPU (at a quarter and 250 ms, dom0 did not reach a steady state; uncapped, no flood moved the
    # others' p99: the noisy guest's own emulated CPU, not its backend, limited the flood)
    claims = ClaimBudget(qos_cpu_pct=50, qos_cadence_factor=4, qos_window_ops=60, scale_cpu_pct=50,
                         scale_cadence_factor=4, scale_steps=(2, 4, 6), scale_window_cadences=60)
    # Real Xen under TCG is slow: a driver domain came back 19–29 s after its crash here, and a
    # monolithic host crash took 68–106 s until dom0 answered again.
    defaults: Mapping[str, str] = {"windsor_cadence_ms": "250", "windsor_impact_threshold_ms": "1000",
                                   "windsor_restart_budget": "60", "windsor_recovery_budget": "120",
                                   "windsor_guests": "4", "windsor_watch_after": "15"}
    fault_defaults: Mapping[str, Mapping[str, str]] = {  # ≫ the 1 s threshold
        "stall": {"duration_s": "10"}, "throttle": {"duration_s": "10"}, "partition": {"duration_s": "10"},
        "memory-pressure": {"duration_s": "10"}, "disk-error": {"duration_s": "10"},
        "xenstore-storm": {"duration_s": "10"},
        "crash-loop": {"wait_s": "300"}}  # a monolithic crash is a host reboot: 60–180 s here
    steady_timeout_s = 120.0  # from every guest's init (`boot` waits for it) to every device progressing
    lease_margin_s = 20.0  # the harness's own revert (one ssh command) took ≈ 1 s here under TCG
    settle_timeout_s = 60.0
    reboot_timeout_s = 300.0  # a dom0 crash to dom0 answering again: 68–180 s here

    def __init__(self, spec: HostSpec) -> None:
        super().__init__(spec)
        unknown = set(spec.params) - {"inventory", "identity"}
        if unknown:
            raise UsageError(f"{spec.scheme}:// takes ?inventory=FILE&identity=FILE, not {sorted(unknown)}")
        if spec.scheme == "xen+ssh" and not spec.host:
            raise UsageError(f"bad host URL {spec.url!r}: write xen+ssh://user@host[:port]")
        # the host and user become ssh arguments: a name like "-oProxyCommand=..." must never get there
        if spec.host and not HOSTNAME_RE.match(spec.host):
            shown = spec.host if len(spec.host) <= 60 else f"{spec.host[:40]}... ({len(spec.host)} characters)"
            raise UsageError(f"bad host name {shown!r}: use a DNS name (at most 253 characters, labels of 63) "
                             "or an IP address")
        if spec.user is not None and not USER_RE.match(spec.user):
            raise UsageError(f"bad user name {spec.user!r} in {spec.url!r}: use letters, digits, '_', '.', '-'")
        if spec.scheme == "xen+local" and (spec.host or spec.user or spec.port):
            raise UsageError(f"xen+local:// takes no user, host or port, not {spec.url!r}")
        self.entry: HostEntry | None = None
        if "inventory" in spec.params:
            self.entry = load_inventory(spec.params["inventory"]).find(spec.url)
        self._remote: Remote | None = None
        self.plan: Plan | None = None
        self.topology: Topology | None = None
        self.records = Records(())
        self.guest_names: tuple[str, ...] = ()
        self.hvm_names: tuple[str, ...] = ()
        self.known: dict[str, str] = {}  # the domains xenstore last listed: name → domid
        self.offset = 0.0  # host wallclock − our wallclock
        self.has_qemu: bool | None = None  # does dom0 have a device model (Debian's qemu-system-xen)?
        self.boot_id = ""
        self.monitors = 0  # xl's domain monitors when the topology came up

    @classmethod
    def cannot(cls, role: str, fault: str) -> str | None:
        from harness.fault import get_fault

        why = super().cannot(role, fault)
        in_dom0 = role in (*daemons.ROLES, daemons.DEVICE_MODEL)
        if why is None and in_dom0 and get_fault(fault).needs & {"cap", "memory"}:
            return f"{fault} of a dom0 process ({role}) is not possible on this kind of host (it needs cgroups)"
        return why

    # -- safety -----------------------------------------------------------------------------------
    @property
    def test_host(self) -> bool:
        return self.entry is not None and self.entry.test_host

    @property
    def dom0_faults(self) -> bool:
        return self.entry is not None and self.entry.dom0_faults

    def preflight(self) -> list[str]:
        try:
            answered = self.remote.run("true", timeout=15)
            why = "" if answered.ok else f"'true' exited {answered.rc}"
        except HostError as exc:
            why = str(exc).rsplit(": ", 1)[-1]
        if why:
            raise HostError(f"{self.spec.url} does not answer over ssh ({why}): check the address, the user and the "
                            "key (?identity=FILE), and that sshd runs in its control domain")
        installed = self.remote.run(f"cat {CURRENT}/VERSION", timeout=10).out.strip()
        if installed != tools_version():
            have = f"has the harness's tools {installed}" if installed else "has no harness tools"
            raise HostError(f"{self.spec.url} {have}, this harness needs {tools_version()}: "
                            f"windsor host prepare {self.prepare_url()}")
        return []

    def prepare_url(self) -> str:
        """The URL to give `windsor host prepare` for this host."""
        return self.spec.url

    def recover(self) -> list[str]:
        return recover(self.remote)

    def swap_lease(self, expected: str, new: str) -> str:
        from harness.xen.hostlease import swap  # the host lease: /var/lib/windsor/state/host.lease

        return swap(self.remote, expected, new)

    # -- the channel ----------------------------------------------------------------------------
    def connect(self) -> Remote:
        spec = self.spec
        if spec.scheme == "xen+local":
            return Remote("local://")
        args = {"ssh_extra_args": "-o StrictHostKeyChecking=accept-new -o ServerAliveInterval=2 "
                                  "-o ServerAliveCountMax=3 -o BatchMode=yes"}
        if "identity" in spec.params:
            args["ssh_identity_file"] = spec.params["identity"]
        user = f"{spec.user}@" if spec.user else ""
        port = f":{spec.port}" if spec.port else ""
        return Remote(f"ssh://{user}{spec.host}{port}", **args)

    @property
    def remote(self) -> Remote:
        if self._remote is None:
            self._remote = self.connect()
        return self._remote

    def sync_clock(self) -> None:
        """The offset of the host's wallclock from ours, from the fastest of a few round trips."""
        best: tuple[float, float] | None = None
        for _ in range(3):
            before = time.time()
            out = self.remote.check("date +%s.%N; cat /proc/sys/kernel/random/boot_id", timeout=10)
            after = time.time()
            host_t, boot_id = out.split()
            if best is None or after - before < best[0]:
                best = (after - before, float(host_t) - (before + after) / 2)
                self.boot_id = boot_id
        assert best is not None
        self.offset = best[1]
        log.info("%s: host clock %+.3fs from ours (round trip %.0f ms)", self.spec.url, self.offset, best[0] * 1e3)

    # -- lifecycle ------------------------------------------------------------------------------
    def adapt(self, guests: Sequence[GuestSpec], roles: tuple[str, ...] = ()) -> tuple[GuestSpec, ...]:
        """One HVM guest, its device model in dom0, the others PV (harness/xen/plan.py's
        `xen_guests`), when the session tests the device model (an HVM boot costs ≈ 40 s of a CPU
        under TCG, and booted once in four times into an early triple fault: xl's monitor then
        boots it again, windsor-topo); otherwise every guest is PV. Records travel on the console,
        through a buffer in the guest (guest-init.sh), so a console outage delays them without
        stopping the workloads; the console device's own records are written straight to it."""
        if roles and daemons.DEVICE_MODEL not in roles:
            return xen_guests(guests, False)
        if self.has_qemu is None:
            try:
                self.has_qemu = self.remote.run(f"[ -x {QEMU} ]", timeout=15).ok
            except HostError:  # not reachable (a dry run): as if it had one; a real run stops at boot
                return xen_guests(guests, True)
            if not self.has_qemu:
                log.warning("%s: no device model in dom0 (%s: apt install qemu-system-xen): every guest is PV",
                            self.spec.url, QEMU)
        return xen_guests(guests, self.has_qemu)

    def boot(self, topology: Topology, guests: Sequence[GuestSpec], cadence: float, seed: int) -> None:
        if not self.remote.answers():
            raise HostError(f"{self.spec.url}: the control domain does not answer")
        self.repair()
        self.topology, self.plan = topology.bind(tuple(g.name for g in guests)), make_plan(topology, guests, cadence)
        if self.entry is not None:
            self.entry.check_topology(self.plan.services)
        self.guest_names = tuple(g.name for g in guests)
        self.hvm_names = tuple(g.name for g in guests if g.hvm)
        self.records = Records((*self.guest_names, DOM0))  # dom0's: its toolstack probe (windsor-xswatch)
        self.sync_clock()
        log.info("%s: creating %s (%s) and %d guests", self.spec.url, topology.name,
                 ", ".join(self.plan.services) or "backends in dom0", len(guests))
        topo = tool("windsor-topo")
        self.remote.check(f"{topo} down >/dev/null 2>&1; rm -rf {STATE}/auto {STATE}/service {STATE}/attach "
                          f"{STATE}/gateway {STATE}/dom0-cap", timeout=60)
        self.remote.write_files(STATE, self.plan.files)
        # every split-driver state change from now on (harness/lab/files/windsor-xswatch), in its own session
        self.remote.check(f"{XSWATCH_STOP}; : >{STATE}/xs-states.log; setsid nohup {tool('windsor-xswatch')} "
                          f">/dev/null 2>&1 </dev/null & echo $! >{STATE}/xswatch.pid", timeout=10)
        self.remote.check(f"setsid nohup {topo} up >{STATE}/topo.out 2>&1 </dev/null &", timeout=10)
        shown = 0

        def topology_up() -> bool:
            nonlocal shown
            lines = self.remote.run(f"cat {STATE}/topo.out", timeout=10).out.splitlines()
            for line in lines[shown:]:
                log.info("%s: %s", self.spec.url, line)
            shown = len(lines)
            if any("FAILED" in line for line in lines):
                raise HostError(f"{self.spec.url}: {next(x for x in lines if 'FAILED' in x)} "
                                f"(see {STATE}/create-*.log on the host)")
            return any(line.endswith("topology up") for line in lines)

        if not wait_until(f"{topology.name} with {len(guests)} guests up on {self.spec.url}",
                          topology_up, TOPO_TIMEOUT_S):
            raise HostError(f"{self.spec.url}: topology not up within {TOPO_TIMEOUT_S:.0f}s")
        self.monitors = int(self.remote.run(daemons.monitors(), timeout=10).out.strip() or 0)
        self.wait_booted()  # an HVM guest under TCG takes minutes (harness/xen/observe.py)

    def build(self) -> str:
        """Xen's version and changeset and dom0's kernel, from the host itself."""
        out = self.remote.run("xl info | grep -E '^(xen_version|xen_changeset) '; uname -r", timeout=30)
        facts = {k.strip(): v.strip() for k, v in (x.split(":", 1) for x in out.out.splitlines() if ":" in x)}
        kernel = next((x for x in out.out.splitlines() if ":" not in x and x.strip()), "?").strip()
        if not out.ok or "xen_version" not in facts:
            return f"Xen (version unknown: xl info failed), dom0 Linux {kernel}"
        changeset = facts.get("xen_changeset", "")
        return f"Xen {facts['xen_version']}" + (f" ({changeset})" if changeset else "") + f", dom0 Linux {kernel}"

    def reusable(self) -> str | None:
        if self.plan is None or self.topology is None:
            return "no topology booted"
        if self.host_reboots():
            return "the host rebooted"
        leases = self.remote.run(f"{tool('windsor-lease')} list", timeout=30)
        if not leases.ok or leases.out.strip():
            return "a lease is still held" if leases.ok else f"its lease journal cannot be read ({leases.err.strip()})"
        missing = sorted({*self.plan.services, *self.guest_names} - set(self.domains()))
        if missing:
            return f"domains missing: {', '.join(missing)}"
        if int(self.remote.run(daemons.monitors(), timeout=10).out.strip() or 0) < self.monitors:
            return "xl's domain monitors are gone (a toolstack fault): crashes would not be answered as before"
        dead = [g for g in self.hvm_names if not self.health(daemons.DEVICE_MODEL, g).ok]
        return f"the device model of {', '.join(dead)} is not running (its guest is frozen)" if dead else None

    def repair(self) -> None:
        """A control domain whose xenstored died cannot run a topology, nor undo one: a test host
        is rebooted (harness/xen/daemons.py); this returns once it is back."""
        daemons.repair(self.remote, self.spec.url, self.test_host, self.current_boot_id, self.reboot_timeout_s)

    def shutdown(self) -> None:
        if self._remote is not None and self.plan is not None:
            try:
                self.repair()
                self.remote.run(f"{XSWATCH_STOP}; {tool('windsor-topo')} down >/dev/null 2>&1", timeout=60)
            except HostError as exc:
                log.warning("%s: could not tear the topology down: %s", self.spec.url, exc)
            self.plan = None

    def now(self) -> float:
        return time.time() + self.offset

    # -- domains ----------------------------------------------------------------------------------
    def domains(self) -> dict[str, str]:
        """Running domains: name → domid (harness/xen/domains.py)."""
        self.known = domains.listed(self.remote, self.spec.url)
        return self.known

    def entities(self) -> tuple[Entity, ...]:
        """dom0 (its boot), its daemons (their pids) and the other domains (their domids); with
        xenstore gone, the domains Xen itself still runs, by the ids xenstore last gave them."""
        try:
            found = self.domains()
        except HostError:
            found = domains.alive(self.remote, self.known)
            log.warning("%s: xenstore does not answer: domains from Xen (%s)", self.spec.url,
                        ", ".join(f"{n} {d}" for n, d in sorted(found.items())))
        in_dom0 = tuple(g for g in self.hvm_names if self.topology is None or self.topology.device_model == "dom0")
        return (Entity("dom0", self.current_boot_id()), *domains.daemon_entities(self.remote, in_dom0),
                *(Entity(n, d) for n, d in sorted(found.items()) if n != "Domain-0"))

    def current_boot_id(self) -> str:
        try:
            return self.remote.run("cat /proc/sys/kernel/random/boot_id", timeout=10).out.strip()
        except HostError:
            return ""

    def planned_target(self, topology: Topology, role: str, guest: str | None = None) -> Target:
        """Kernel roles, and device models, where the topology puts them (a device model's stub
        domain is libxl's ``GUEST-dm``); the process roles (xenstored, xenconsoled, the toolstack)
        stay in dom0 here, whatever the topology says: Debian's Xen has no stub domains for them."""
        if role in KERNEL_ROLES or (role == daemons.DEVICE_MODEL and topology.device_model == "stubdom"):
            return super().planned_target(topology, role, guest)
        if role in (*daemons.ROLES, daemons.DEVICE_MODEL):
            return Target(role, "dom0", daemons.process(role, guest), guest)
        return Target(role, "dom0", guest=guest)

    def locate(self, role: str, guest: str | None = None) -> Target:
        """Where a role runs: kernel roles in their driver domain or dom0, the others in dom0 (which
        faults may hit them is `cannot`'s business)."""
        if self.topology is None:
            raise UsageError(f"{self.spec.url}: no topology booted")
        return self.planned_target(self.topology, role, guest)

    def _stamped(self, command: str, timeout: float = 30.0) -> float:
        """Run `command` right after reading the host's clock there; that time."""
        out = self.remote.check("date +%s.%N; " + command, timeout=timeout)
        return float(out.split()[0])

    def kill(self, target: Target) -> float:
        if target.process is not None:  # SIGKILL of a daemon
            return self._stamped(daemons.kill(target.role, target.guest))
        if target.domain == "dom0":
            # a dom0 kernel crash: Xen reboots the host; the command returns before it happens
            return self._stamped("(sleep 0.1; echo c > /proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &") + 0.1
        # an in-domain kernel crash, which on_crash="restart" answers
        return self._stamped(f"xl sysrq {q(target.domain)} c")

    def _take(self, lease: Lease, undo: str) -> str:
        """The command that journals `lease` in the control domain and arms its watchdog."""
        return (f"{tool('windsor-lease')} take {q(lease.id)} {lease.total_s:.3f} {q(lease.owner.word())} "
                f"{q(lease.fault)} {q(lease.target)} {q(undo)}")

    def _apply(self, change: Change, lease: Lease) -> float:
        if change.kind in ("pause", "cap") and change.entity == "dom0":  # dom0 cannot be paused: cap it hard
            return self._cap_dom0(lease, DOM0_STALL_CAP if change.kind == "pause" else int(change.args["cap_pct"]))
        undo, do = commands(change, self.remote, self.domains)
        out = self.remote.check(f"{self._take(lease, undo)} && {do} && date +%s.%N")
        return float(out.split()[-1])

    def _cap_dom0(self, lease: Lease, cap_pct: int) -> float:
        """Cap dom0's CPU (credit2) with wstall, which undoes the cap itself when the window ends
        (a capped dom0 may not run a command to undo it in time); it starts after this command has
        returned. The journal's undo is for a wstall that was killed: the cap goes back to none."""
        take = self._take(lease, "pkill -TERM -x wstall || xl sched-credit2 -d 0 -c 0")
        stall = f"exec {tool('wstall')} 0 {int(cap_pct)} {round(min(lease.window_s, DOM0_STALL_MAX_S) * 1000)}"
        return self._stamped(f"{take} && (sleep {DOM0_STALL_DELAY_S}; {stall}) >{STATE}/wstall.out 2>&1 "
                             "</dev/null &") + DOM0_STALL_DELAY_S

    def _end(self, lease: Lease, why: str) -> float:
        """End a lease in the control domain (runs its undo); the host time it was undone."""
        words = self.remote.run(f"{tool('windsor-lease')} end {q(lease.id)} {q(why)}", timeout=60).out.split()
        if len(words) < 2 or (words[0] != "none" and words[-1] != "rc=0"):
            raise HostError(f"{self.spec.url}: could not end {lease.describe()}: {' '.join(words)}")
        if words[0] == "none" and len(words) > 2:
            log.warning("%s: the host had already ended %s (%s)", self.spec.url, lease.describe(), words[2])
        return float(words[1])

    def _undo(self, lease: Lease, change: Change) -> float:
        if not (change.entity == "dom0" and change.kind in ("pause", "cap")):
            return self._end(lease, "harness")

        uncapped = uncap_dom0(self.remote, self.spec.url, DOM0_STALL_MAX_S)
        self._end(lease, "harness")  # the cap is gone already: this clears the journal
        return uncapped

    def health(self, role: str, guest: str | None = None) -> Health:
        target = self.locate(role, guest)
        try:
            if target.process is not None:  # a daemon: answering, and since when it runs
                done = self.remote.run(daemons.health(role, target.guest), timeout=daemons.ANSWER_S + 5)
                return Health(done.ok, float(done.out) if done.ok else None)
            if target.domain == "dom0":
                # windsor-boot wrote when this boot of dom0 was ready (prepare, on a host not rebooted since)
                done = self.remote.run("cat /run/windsor-ready", timeout=5)
                return Health(done.ok, float(done.out) if done.ok and done.out.strip() else None)
            domid = self.domains().get(target.domain)
            if domid is None:
                return Health(False)
            ready = self.remote.run(f"xenstore-read /local/domain/{q(domid)}/data/windsor-ready", timeout=5)
            return Health(ready.ok, float(ready.out) if ready.ok else None)
        except HostError:
            return Health(False)

    def host_reboots(self) -> int:
        now_id = self.current_boot_id()
        return int(bool(now_id) and now_id != self.boot_id)
