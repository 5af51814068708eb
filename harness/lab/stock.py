"""The stock lab host: a plain Debian bookworm Xen install, as an admin sets one up — systemd,
Debian's Xen packages with their own init scripts (``/etc/init.d/xen`` starts oxenstored and
xenconsoled), sshd, DHCP on the NIC — on a disk image booted under QEMU. Nothing of the harness
is in it: ``windsor host prepare`` puts it there over ssh, as on a bare-metal runner.

The image is built once (debootstrap, ≈ 2 min) and cached; every ``lab up`` runs on a fresh
copy-on-write overlay of it (``overlay.qcow2``), so it starts from the stock image again, and a
reboot of the lab host (a dom0 crash, which is a fresh QEMU: harness/lab/machine.py) keeps what
was written since. (QEMU's ``-snapshot`` would not: its writes end with the QEMU.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.lab.build import SUITE, mirror, run, stage

STOCK_PACKAGES = ("systemd-sysv", "xen-system-amd64", "openssh-server", "linux-image-amd64", "bridge-utils",
                  "iproute2", "initramfs-tools", "ifupdown", "isc-dhcp-client",
                  "qemu-system-xen")  # what xen-utils recommends (apt installs it): HVM guests' device model
DISK_GB = 3
HOSTNAME = "stock-xen"
# what an admin writes: the NIC (QEMU's virtio-net is ens3) on DHCP, root by key only
INTERFACES = "auto lo\niface lo inet loopback\n\nauto ens3\niface ens3 inet dhcp\n"
FSTAB = "/dev/vda / ext4 errors=remount-ro 0 1\n"


@dataclass(frozen=True)
class StockFiles:
    """The stock host's build products, under the lab dir's ``stock/``."""

    dir: Path
    root: Path
    disk: Path
    xen: Path
    vmlinuz: Path
    initrd: Path

    @classmethod
    def at(cls, lab_root: Path) -> StockFiles:
        d = lab_root / "stock"
        return cls(d, d / "root", d / "disk.img", d / "xen", d / "vmlinuz", d / "initrd.img")


def build_stock(lab_root: Path, key: Path) -> StockFiles:
    """The stock host's disk image and its boot files (cached; redone when the inputs change)."""
    files = StockFiles.at(lab_root)
    files.dir.mkdir(parents=True, exist_ok=True)
    source = mirror()

    def bootstrap() -> None:
        shutil.rmtree(files.root, ignore_errors=True)
        run("debootstrap", f"--include={','.join(STOCK_PACKAGES)}", SUITE, str(files.root), source, timeout=1200)

    stage(files.dir, "stock-root", f"{SUITE} {source} {STOCK_PACKAGES}", bootstrap)
    if not key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "windsor-lab", "-f", str(key))
    pub = key.with_suffix(".pub").read_text()

    def disk() -> None:
        root = files.root
        (root / "etc" / "hostname").write_text(HOSTNAME + "\n")
        (root / "etc" / "hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {HOSTNAME}\n")
        (root / "etc" / "fstab").write_text(FSTAB)
        (root / "etc" / "network" / "interfaces").write_text(INTERFACES)
        ssh = root / "root" / ".ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text(pub)
        boot = root / "boot"
        kernel = sorted(boot.glob("vmlinuz-*"))[-1]
        release = kernel.name.removeprefix("vmlinuz-")
        shutil.copy(kernel, files.vmlinuz)
        shutil.copy(boot / f"initrd.img-{release}", files.initrd)
        gz = sorted(boot.glob("xen-4.17*.gz"))[-1]
        with open(files.xen, "wb") as out:
            out.write(subprocess.run(["zcat", str(gz)], capture_output=True, check=True).stdout)
        tmp = files.disk.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        with open(tmp, "wb") as fh:
            fh.truncate(DISK_GB << 30)
        run("mkfs.ext4", "-q", "-F", "-L", "stock-root", "-d", str(root), str(tmp), timeout=300)
        os.replace(tmp, files.disk)

    stage(files.dir, "stock-disk", f"{INTERFACES} {FSTAB} {HOSTNAME} {DISK_GB} {pub}", disk)
    return files


def qemu_boot_args(files: StockFiles, xen_args: str) -> list[str]:
    """QEMU's boot arguments for the stock host: Xen, Debian's kernel and initramfs, and a fresh
    copy-on-write overlay of its disk (the cached image is never written)."""
    overlay = files.dir / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    run("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(files.disk), str(overlay))
    # cache=unsafe, as -snapshot's own overlay: the guest's flushes are not sent to this machine's
    # disk (the overlay is thrown away at the next `lab up`; a reset, a fresh QEMU, still reads
    # what the last one wrote, from the page cache)
    return ["-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
            "-kernel", str(files.xen), "-append", xen_args,
            "-initrd", f"{files.vmlinuz} root=/dev/vda ro console=hvc0 quiet,{files.initrd}"]
