"""The plan of a topology on a Xen host: the xl.cfg files of its driver domains and guests, and
what the recovery agent re-attaches — files under the control domain's state dir, read by our
``windsor-topo`` and ``windsor-agent`` scripts (harness/lab/files/).

On Xen the kernel roles (netback, blkback) move into driver domains built from one small image
(harness/lab/images.py), and an HVM guest's device model into a Linux stub domain
(``GUEST-dm``, libxl's own, from our stub image) where the topology says ``device_model =
"stubdom"``; the process roles (xenstore, toolstack, console) stay in dom0, since Debian's Xen
has no stub domains for them.

Each guest disk is a device-mapper device, ``windsor-GUEST``: over the block driver domain's own
``xvdX`` (dd-init.sh makes it; its kernel command line names the guests in xvdb, xvdc... order),
or over a loop device of the image in dom0 (windsor-topo). The change ``disk-error`` swaps its
table for dm's ``error`` target and back (harness/xen/changes.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.model import KERNEL_ROLES, ROLE_DEVICE, GuestSpec
from harness.topology import Topology
from harness.xen.payload import IMAGES, SCRIPTS, STATE

# the guests' private network, on the bridge windsor0 (no uplink) in netback's domain: a subnet
# reserved for documentation (RFC 5737), so it never collides with a real host's networks. The
# bridge is .1, guest N is .(10 + N).
SUBNET = "198.51.100"
BRIDGE = "windsor0"
DD_MEMORY_MB = 192
GUEST_MEMORY_MB = 96
HVM_MEMORY_MB = 256  # at 192 (no serial) it triple-faulted once early; 256 with a serial pty booted
STUB_MEMORY_MB = 256  # its image is 62 MB (QEMU and its libraries: 46 MB), unpacked in RAM
BACKEND_KIND = {"netback": "net", "blkback": "blk"}


@dataclass(frozen=True)
class Plan:
    files: dict[str, str]  # path under STATE → text
    services: dict[str, tuple[str, ...]]  # driver domain → its roles


def cfg(**items: object) -> str:
    def value(v: object) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return str(v) if isinstance(v, int) else '"' + str(v).replace('"', "") + '"'

    return "".join(f"{k} = {value(v)}\n" for k, v in items.items())


def xen_guests(guests: Sequence[GuestSpec], has_qemu: bool) -> tuple[GuestSpec, ...]:
    """The guests as a Xen host runs them: one HVM guest, the first (an HVM boot takes ≈ 35 s of a
    CPU under TCG), with its emulated disk only (`emul`); the others PV, as are all on a host
    without a device model."""
    first = next((g.name for g in guests if g.hvm), None) if has_qemu else None
    return tuple(replace(g, net=False, disk=False) if g.name == first else replace(g, hvm=False) for g in guests)


def stub_items() -> dict[str, object]:
    """The device model in a Linux stub domain (libxl 4.17's ``GUEST-dm``): our stub image
    (harness/lab/images.py, files/stub-init.sh) on the domains' kernel. It has no serial port for
    the guest (a stub's serial is one more console, not wired here)."""
    return {"device_model_stubdomain_override": 1, "device_model_version": "qemu-xen",
            "stubdomain_kernel": f"{IMAGES}/vmlinux", "stubdomain_ramdisk": f"{IMAGES}/stub.cpio",
            "stubdomain_memory": STUB_MEMORY_MB}


def hvm_items(g: GuestSpec, extra: str, stubdom: bool = False) -> dict[str, object]:
    """An HVM guest: Debian's QEMU as its device model, in dom0 (libxl's default) or in a stub
    domain (`stub_items`), serving one
    emulated AHCI disk (``emul/GUEST.img``, which windsor-topo makes) that its ``emul`` workload
    writes; the same kernel and image as a PV guest, booted by QEMU's firmware (fw_cfg), its records
    on the PV console (hvc0). Under TCG: ``tsc_mode="native"`` (Xen cannot emulate the RDTSCP that
    TCG's SVM intercepts without NRIP: the guest triple-faulted), ``pci=noearly`` (Linux's early AGP
    probe scans 256 PCI buses through QEMU: 17 s), ``nokaslr`` (one early triple fault seen without)."""
    items: dict[str, object] = {
        "type": "hvm", "kernel": f"{IMAGES}/vmlinuz", "ramdisk": f"{IMAGES}/guest.cpio",
        "cmdline": f"{extra} windsor.emul=sda nokaslr pci=noearly xen_emul_unplug=never",
        "memory": HVM_MEMORY_MB, "vga": "none", "serial": "pty", "tsc_mode": "native", "hdtype": "ahci",
        "on_reboot": "restart",  # an early triple fault under TCG (xl's monitor boots it again)
        "disk": [f"format=raw,vdev=hda,access=rw,target={STATE}/emul/{g.name}.img"]}
    if stubdom:
        del items["serial"]
        items |= stub_items()
    return items


def ip_of(guest: GuestSpec) -> str:
    return f"{SUBNET}.{10 + guest.index}"


def make_plan(topology: Topology, guests: Sequence[GuestSpec], cadence_s: float) -> Plan:
    """The driver domains (a sharded one as one domain per shard that serves a guest using it),
    then the guests. With a CPU budget (`Topology.cpu_pct` < 100) every driver domain gets credit2's
    ``cap`` in its xl.cfg (kept across its restarts), and dom0 the same cap (the file
    ``dom0-cap``: windsor-topo sets it when the topology is up and lifts it when it goes down)."""
    bound = topology.bind(tuple(g.name for g in guests))
    services: dict[str, list[str]] = {}
    for name, placed, served in bound.domains():
        kernel = [r for r in placed if r in KERNEL_ROLES]
        if kernel and (served is None or any(ROLE_DEVICE[r] in g.devices for g in guests if g.name in served
                                             for r in kernel)):
            services[name] = kernel
    netback = {g.name: bound.domain_of("netback", g.name) for g in guests}
    blkback = {g.name: bound.domain_of("blkback", g.name) for g in guests}
    files: dict[str, str] = {}
    cap = {"cap": topology.cpu_pct} if topology.cpu_pct < 100 else {}
    if cap:
        files["dom0-cap"] = f"{topology.cpu_pct}\n"
    for n, (name, roles) in enumerate(sorted(services.items())):
        kinds = ",".join(BACKEND_KIND[r] for r in roles)
        mine = [g for g in guests if g.disk and blkback[g.name] == name] if "blkback" in roles else []
        disks = [f"{STATE}/disks/{g.name}.img,raw,xvd{chr(ord('b') + i)},w" for i, g in enumerate(mine)]
        files[f"auto/{10 + n:02d}-{name}.cfg"] = cfg(
            name=name, type="pv", kernel=f"{IMAGES}/vmlinux", ramdisk=f"{IMAGES}/dd.cpio",
            extra=f"console=hvc0 rdinit=/init quiet windsor.roles={kinds} "
                  f"windsor.disks={','.join(g.name for g in mine) or '-'} windsor.gw={SUBNET}.1"
                  + (" windsor.debug=1" if os.environ.get("WINDSOR_LAB_DEBUG") else ""),
            memory=DD_MEMORY_MB, vcpus=1, driver_domain=1, on_crash="restart", disk=disks, **cap,
        )
        files[f"service/{name}"] = " ".join(roles) + "\n"
    net = [g for g in guests if g.net]
    # a guest's echo peer is the next guest on the same bridge: across driver domains' bridges (a
    # sharded netback) there is no link, so a guest whose next one is elsewhere pings its bridge
    peer = {}
    for i, g in enumerate(net):
        nxt = net[(i + 1) % len(net)]
        peer[g.name] = ip_of(nxt) if nxt is not g and netback[nxt.name] == netback[g.name] else f"{SUBNET}.1"
    for g in guests:
        extra = f"console=hvc0 rdinit=/init quiet windsor.cadence={round(cadence_s * 1000)}"
        items: dict[str, object] = {}
        attach: list[str] = []
        if g.net:
            extra += f" windsor.ip={ip_of(g)} windsor.peer={peer[g.name]}"
            spec = f"bridge={BRIDGE},mac={g.mac},script={SCRIPTS}/windsor-vif" + (
                f",backend={netback[g.name]}" if netback[g.name] != "dom0" else "")
            items["vif"] = [spec]
            attach.append(f"net {netback[g.name]} {spec}")
        if g.disk:
            extra += " windsor.disk=1"
            if blkback[g.name] != "dom0":
                spec = (f"format=raw,access=rw,backend={blkback[g.name]},script={SCRIPTS}/windsor-block,"
                        f"target=/dev/mapper/windsor-{g.name}")  # over its xvdX: dd-init.sh
            else:
                spec = f"format=raw,access=rw,target={STATE}/disks/{g.name}.dev"  # windsor-topo's disks_up
            items["disk"] = [f"vdev=xvda,{spec}"]
            attach.append(f"disk {blkback[g.name]} {spec}")
        if g.hvm:
            if g.net or g.disk:  # XenHost.adapt: PV devices beside emulated ones are not wired here yet
                raise ValueError(f"{g.name}: an HVM guest here has its emulated disk only, not net or disk")
            items |= hvm_items(g, extra, topology.device_model == "stubdom")
        else:
            items |= {"type": "pv", "kernel": f"{IMAGES}/vmlinux", "ramdisk": f"{IMAGES}/guest.cpio", "extra": extra,
                      "memory": GUEST_MEMORY_MB}
        files[f"auto/{50 + g.index:02d}-{g.name}.cfg"] = cfg(name=g.name, vcpus=1, on_crash="destroy", **items)
        files[f"attach/{g.name}"] = "".join(line + "\n" for line in attach)
    if any(netback[g.name] == "dom0" for g in net):
        files["gateway"] = f"{SUBNET}.1\n"  # windsor-topo puts it on dom0's windsor0
    return Plan(files, {k: tuple(v) for k, v in services.items()})
