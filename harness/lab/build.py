"""Building the lab's images from Debian packages only: the Xen hypervisor, the Debian kernel and
its modules, a debootstrapped dom0 root with xen-utils and sshd, packed as an initramfs.

Every stage is cached under the lab dir with a stamp of its inputs, and is redone only when they
change (package versions, the init script, the module list).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HostError

log = logging.getLogger("windsor.lab")
FILES = Path(__file__).parent / "files"
SUITE = "bookworm"
# what the host needs
LAB_APT = ("qemu-system-x86", "qemu-utils", "debootstrap", "cpio", "kmod", "openssh-client", "gcc", "libc6-dev",
           "e2fsprogs")
# qemu-system-xen: HVM guests' device model (libxl's default /usr/libexec/xen-qemu-system-i386; +41 MB)
DOM0_PACKAGES = ("xen-utils-4.17", "iproute2", "bridge-utils", "busybox", "kmod", "openssh-server",
                 "procps", "iputils-ping", "coreutils", "dmsetup", "qemu-system-xen")
# dom0's Xen userland, overlaid at exactly the hypervisor's version (debootstrap takes the suite's
# older one: with xen-utils 4.17.5 on a 4.17.7 hypervisor, xl corrupted its heap now and then)
XEN_USERLAND = ("xen-utils-4.17", "xen-utils-common", "xenstore-utils", "libxenmisc4.17", "libxencall1",
                "libxendevicemodel1", "libxenevtchn1", "libxenforeignmemory1", "libxengnttab1", "libxenhypfs1",
                "libxenstore4", "libxentoolcore1", "libxentoollog1")
DOM0_MODULES = ("xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs", "xen-netback",
                "xen-blkback", "xen-netfront", "xen-blkfront", "bridge", "virtio_pci", "virtio_net", "virtio_blk",
                "ext4", "loop", "dm-mod")
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "var/cache/apt",
         "var/lib/apt/lists", "usr/share/zoneinfo")


def run(*argv: str, cwd: Path | None = None, timeout: float = 600) -> str:
    """Run a host command; HostError with its output if it fails."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise HostError(f"lab: {argv[0]} is not installed (see LAB_APT in harness/lab/build.py)") from None
    except subprocess.TimeoutExpired:
        raise HostError(f"lab: {' '.join(argv[:3])} did not finish within {timeout:.0f}s") from None
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[-400:]
        raise HostError(f"lab: {' '.join(argv[:4])} failed ({done.returncode}): {said}")
    return done.stdout


@dataclass(frozen=True)
class LabFiles:
    """Where each build product lives in the lab dir (`LabFiles.at(root)`)."""

    root: Path
    debs: Path
    extracted: Path
    xen: Path
    vmlinuz: Path
    rootfs: Path
    dom0_cpio: Path
    guest_cpio: Path
    dd_cpio: Path
    stub_cpio: Path
    key: Path
    state: Path

    @classmethod
    def at(cls, root: Path) -> LabFiles:
        names = ("debs", "extracted", "xen", "vmlinuz", "rootfs", "dom0.cpio", "guest.cpio", "dd.cpio", "stub.cpio",
                 "id_ed25519",
                 "state.img")
        return cls(root, *(root / name for name in names))


def stage(root: Path, name: str, inputs: str, make: Callable[[], None]) -> bool:
    """Run `make` unless the stamp in `root` says it already ran with the same inputs; True if it ran."""
    stamp = root / f".{name}.stamp"
    digest = hashlib.sha256(inputs.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        log.info("lab: %s is up to date", name)
        return False
    started = time.monotonic()
    log.info("lab: building %s", name)
    make()
    stamp.write_text(digest)
    log.info("lab: built %s in %.1fs", name, time.monotonic() - started)
    return True


def kernel_package() -> str:
    """The Debian kernel that linux-image-amd64 points at now (e.g. linux-image-6.1.0-56-amd64)."""
    for line in run("apt-cache", "depends", "linux-image-amd64").splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if name.startswith("linux-image-") and name[len("linux-image-"):][0].isdigit():
            return name
    raise HostError("lab: apt-cache does not know linux-image-amd64 (run apt-get update)")


def version_of(package: str) -> str:
    for line in run("apt-cache", "policy", package).splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    raise HostError(f"lab: no candidate version of {package}")


def mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap must use the same reachable one)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] not in ("deb", "URIs:"):
                continue
            for word in words[1:]:
                if word.startswith("http") and "/debian" in word and "security" not in word:
                    return word.rstrip("/")
    return "http://deb.debian.org/debian"


def fetch(files: LabFiles) -> str:
    """Download and unpack the hypervisor, the kernel and busybox-static; returns the kernel version."""
    kernel = kernel_package()
    packages = ("xen-hypervisor-4.17-amd64", kernel, "busybox-static")
    xen_version = version_of("xen-hypervisor-4.17-amd64")
    versions = " ".join(f"{p}={version_of(p)}" for p in packages) + f" userland={xen_version} dev"
    release = kernel.removeprefix("linux-image-")

    def make() -> None:
        shutil.rmtree(files.debs, ignore_errors=True)
        shutil.rmtree(files.extracted, ignore_errors=True)
        (files.debs / "userland").mkdir(parents=True)
        run("apt-get", "download", *packages, cwd=files.debs)
        run("apt-get", "download", *(f"{p}={xen_version}" for p in XEN_USERLAND), cwd=files.debs / "userland")
        (files.debs / "dev").mkdir()
        run("apt-get", "download", f"libxen-dev={xen_version}", cwd=files.debs / "dev")
        for deb in (files.debs / "dev").glob("*.deb"):
            run("dpkg-deb", "-x", str(deb), str(files.debs / "dev" / "root"))
        for deb in files.debs.glob("*.deb"):
            run("dpkg-deb", "-x", str(deb), str(files.extracted))
        with open(files.xen, "wb") as out:
            gz = next((files.extracted / "boot").glob("xen-4.17-amd64.gz"))
            out.write(subprocess.run(["zcat", str(gz)], capture_output=True, check=True).stdout)
        shutil.copy(files.extracted / "boot" / f"vmlinuz-{release}", files.vmlinuz)
        run("depmod", "-b", str(files.extracted), release)

    stage(files.root, "fetch", versions, make)
    return release


def bootstrap(files: LabFiles) -> None:
    """A minimal Debian root with xen-utils and sshd (debootstrap, ≈ 50 s)."""
    source = mirror()

    def make() -> None:
        shutil.rmtree(files.rootfs, ignore_errors=True)
        run("debootstrap", "--variant=minbase", f"--include={','.join(DOM0_PACKAGES)}", SUITE,
            str(files.rootfs), source, timeout=900)

    stage(files.root, "rootfs", f"{SUITE} {source} {DOM0_PACKAGES}", make)


def dom0_image(files: LabFiles, release: str) -> None:
    """The dom0 initramfs: the debootstrapped root, pruned, with /init, modules, our ssh key, and
    the harness's tools and images under /opt/windsor (the payload `windsor host prepare`
    uploads elsewhere)."""
    from harness.lab.images import install_modules
    from harness.xen.payload import install_into, sources, tools_version

    init = (FILES / "dom0-init.sh").read_text()
    payload = sources(files)
    contents = hashlib.sha256(b"".join(path.read_bytes() for _, path in sorted(payload.items()))).hexdigest()
    userland = sorted(p.name for p in (files.debs / "userland").glob("*.deb"))

    def make() -> None:
        root = files.rootfs
        for deb in sorted((files.debs / "userland").glob("*.deb")):
            run("dpkg-deb", "-x", str(deb), str(root))
        for sub in PRUNE:
            shutil.rmtree(root / sub, ignore_errors=True)
        (root / "init").write_text(init)
        (root / "init").chmod(0o755)
        shutil.rmtree(root / "lib" / "modules" / release, ignore_errors=True)
        install_modules(files, release, DOM0_MODULES, root)
        for old in ("usr/local/sbin/windsor-topo", "usr/local/sbin/windsor-agent", "usr/local/sbin/windsor-lease",
                    "usr/local/sbin/wstall", "var/lib/windsor/vmlinux", "var/lib/windsor/guest.cpio",
                    "var/lib/windsor/dd.cpio"):  # where earlier builds put them
            (root / old).unlink(missing_ok=True)
        install_into(root, payload)
        if not files.key.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "windsor-lab", "-f", str(files.key))
        ssh = root / "root" / ".ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        shutil.copy(files.key.with_suffix(".pub"), ssh / "authorized_keys")
        run("ssh-keygen", "-A", "-f", str(root))
        (root / "etc" / "ssh" / "sshd_config.d").mkdir(exist_ok=True)
        (root / "etc" / "ssh" / "sshd_config.d" / "windsor.conf").write_text(
            "PermitRootLogin prohibit-password\nUseDNS no\nPasswordAuthentication no\n")
        pack(root, files.dom0_cpio)

    rootfs = (files.root / ".rootfs.stamp").read_text()  # a new root (DOM0_PACKAGES) makes a new image
    stage(files.root, "dom0", f"{release} {init} {tools_version()} {contents} {DOM0_MODULES} {PRUNE} {userland} "
          f"{rootfs}", make)


def pack(root: Path, out: Path) -> None:
    """An uncompressed newc cpio of `root` (what Xen's multiboot module loader hands to Linux)."""
    tmp = out.with_suffix(".tmp")
    listing = subprocess.run(["find", "."], cwd=root, capture_output=True, check=True).stdout
    with open(tmp, "wb") as fh:
        subprocess.run(["cpio", "--quiet", "-o", "-H", "newc"], cwd=root, input=listing, stdout=fh, check=True)
    os.replace(tmp, out)


def payload(root: Path) -> LabFiles:
    """What a Xen host needs from this machine (harness/xen/payload.py): the domains' kernel, the
    guest and driver-domain images, wstall. Built from Debian packages, cached."""
    files = LabFiles.at(root)
    root.mkdir(parents=True, exist_ok=True)
    from harness.lab.images import dd_image, guest_image, stub_image, vmlinux_image

    release = fetch(files)
    bootstrap(files)
    guest_image(files, release)
    dd_image(files, release)
    stub_image(files, release)
    vmlinux_image(files)
    return files


def build(root: Path) -> tuple[LabFiles, str]:
    """Everything the lab boots from; cached. Returns the files and the kernel release."""
    files = payload(root)
    release = fetch(files)
    dom0_image(files, release)
    return files, release
