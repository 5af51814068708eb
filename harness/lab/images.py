"""The lab's small images: the PV guests', the driver domains' and the device-model stub domains' initramfs.

Both are kept small on purpose (a 160 MB driver-domain ramdisk made a rebuild take ≈ 35 s under
TCG): static busybox, our `wrec`, the kernel modules the domain needs and, for driver domains, xl
(for `xl devd`), xenstore-*, bash, the coreutils the hotplug scripts need (busybox `stat` never
satisfies locking.sh) and all of /etc/xen/scripts, with their shared libraries from dom0's root.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.lab.build import FILES, LabFiles, pack, run, stage

GUEST_MODULES = ("xen-netfront", "xen-blkfront", "ahci", "sd_mod")  # ahci, sd_mod: an HVM guest's emulated disk
DD_MODULES = ("xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs", "xen-netback", "bridge",
              "xen-blkback", "xen-blkfront", "dm-mod")
HOTPLUG = ("windsor-vif", "windsor-block")  # our lean hotplug scripts (harness/xen/payload.py)
# path in dom0's root → path in the driver domain's root
DD_BINARIES = {
    "usr/lib/xen-4.17/bin/xl": "usr/sbin/xl",
    "bin/bash": "bin/bash",
    "bin/ip": "sbin/ip",
    "usr/sbin/brctl": "usr/sbin/brctl",
    "usr/bin/flock": "usr/bin/flock",
    "usr/sbin/dmsetup": "usr/sbin/dmsetup",  # each guest disk a device-mapper device (disk-error)
    **{f"usr/bin/{tool}": f"usr/bin/{tool}" for tool in ("stat", "dirname", "basename", "readlink", "mktemp")},
    **{f"usr/bin/xenstore-{op}": f"usr/bin/xenstore-{op}"
       for op in ("read", "write", "rm", "exists", "list", "ls", "chmod", "watch")},
}


STUB_MODULES = ("xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs", "xen-blkfront")
STUB_BINARIES = {
    "usr/libexec/xen-qemu-system-i386": "usr/bin/qemu",
    "usr/lib/xen-4.17/bin/vchan-socket-proxy": "usr/bin/vchan-socket-proxy",
    **{f"usr/bin/xenstore-{op}": f"usr/bin/xenstore-{op}" for op in ("read", "write", "list", "watch")},
}
STUB_DATA = ("usr/share/qemu", "usr/share/seabios")  # QEMU's option ROMs (linuxboot_dma.bin for -kernel)


def modules_for(files: LabFiles, release: str, names: tuple[str, ...]) -> list[Path]:
    """The .ko files (with their dependencies) of `names`, from the unpacked kernel package."""
    out: set[Path] = set()
    for name in names:
        text = run("modprobe", "--show-depends", "-d", str(files.extracted), "-S", release, name)
        for line in text.splitlines():
            if line.startswith("insmod "):
                out.add(Path(line.split()[1]))
    return sorted(out)


def install_modules(files: LabFiles, release: str, names: tuple[str, ...], root: Path) -> None:
    """`names` and their dependencies into `root`/lib/modules, with a modules.dep for modprobe."""
    src_base = files.extracted / "lib" / "modules" / release
    moddir = root / "lib" / "modules" / release
    for ko in modules_for(files, release, names):
        dest = moddir / ko.relative_to(src_base)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ko, dest)
    for meta in src_base.glob("modules.builtin*"):
        shutil.copy(meta, moddir / meta.name)
    shutil.copy(src_base / "modules.order", moddir / "modules.order")
    run("depmod", "-b", str(root), release)


def libraries(rootfs: Path, binary: Path) -> set[str]:
    """The shared libraries (paths relative to the root) `binary` of `rootfs` loads."""
    libdirs = [rootfs / d for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")]
    out = run("env", f"LD_LIBRARY_PATH={':'.join(map(str, libdirs))}", "ldd", str(binary))
    found: set[str] = set()
    for line in out.splitlines():
        words = line.split()
        path = next((w for w in words if w.startswith("/")), None)
        if path is None:
            continue
        rel = path[len(str(rootfs)):] if path.startswith(str(rootfs)) else path
        rel = rel.lstrip("/")
        if not (rootfs / rel).exists():
            raise RuntimeError(f"{binary.name} needs {path}, not in dom0's root")
        found.add(rel)
    return found


def vmlinux_image(files: LabFiles) -> Path:
    """The domains' kernel, uncompressed (see extract_vmlinux)."""
    out = files.root / "vmlinux"
    stage(files.root, "vmlinux", f"{files.vmlinuz.stat().st_size} {files.vmlinuz.stat().st_mtime_ns}",
          lambda: extract_vmlinux(files.vmlinuz, out))
    return out


def extract_vmlinux(vmlinuz: Path, out: Path) -> None:
    """The uncompressed kernel ELF inside a bzImage (Debian's is xz). Domains boot from it: in
    dom0 under TCG, xl decompressing an 8 MB xz kernel for every domain it builds takes seconds."""
    import lzma

    data = vmlinuz.read_bytes()
    at = data.find(b"\xfd7zXZ\x00")
    if at < 0:
        raise RuntimeError(f"{vmlinuz}: no xz-compressed kernel inside")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[at:])
    if not elf.startswith(b"\x7fELF"):
        raise RuntimeError(f"{vmlinuz}: the xz payload is not an ELF kernel")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(elf)
    tmp.replace(out)


def base_root(files: LabFiles, root: Path, init: str) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(files.extracted / "bin" / "busybox", root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    run("gcc", "-static", "-O2", "-Wall", "-Werror", "-o", str(root / "bin" / "wrec"), str(FILES / "wrec.c"))
    (root / "init").write_text(init)
    (root / "init").chmod(0o755)


def guest_image(files: LabFiles, release: str) -> None:
    """A PV guest's initramfs: busybox, wrec, the front-end modules, and an init that runs the
    workloads named on its kernel command line and prints their records."""
    init = (FILES / "guest-init.sh").read_text()
    wrec = (FILES / "wrec.c").read_text()

    def make() -> None:
        root = files.root / "guest-root"
        base_root(files, root, init)
        install_modules(files, release, GUEST_MODULES, root)
        pack(root, files.guest_cpio)

    stage(files.root, "guest", f"{release} {GUEST_MODULES} {init} {wrec}", make)


def copy_binaries(rootfs: Path, root: Path, binaries: dict[str, str]) -> None:
    """`binaries` (path in dom0's root → path in `root`) and the shared libraries they load."""
    libs: set[str] = set()
    for src, dest in binaries.items():
        (root / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(rootfs / src, root / dest, follow_symlinks=True)
        libs |= libraries(rootfs, rootfs / src)
    copy_libraries(rootfs, root, libs)


def copy_libraries(rootfs: Path, root: Path, libs: set[str]) -> None:
    """Shared libraries (paths relative to the roots) from dom0's root into `root`."""
    for lib in sorted(libs):
        (root / lib).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(rootfs / lib, root / lib, follow_symlinks=True)


ATTACKER = ("windsor-attempt", "wprobe.c")  # an isolation attacker's tools in a domU (harness/isolation.py)


def install_attacker(files: LabFiles, root: Path) -> None:
    """windsor-attempt and wprobe (with the libraries it loads) into a domU image's `root`."""
    from harness.xen.payload import build_tool  # (payload imports this module)

    probe = build_tool(files, "wprobe")
    for src, dest in ((probe, "usr/bin/wprobe"), (FILES / "windsor-attempt", "usr/bin/windsor-attempt")):
        shutil.copy(src, root / dest)
        (root / dest).chmod(0o755)
    copy_libraries(files.rootfs, root, libraries(files.rootfs, probe))


def domu_root(files: LabFiles, name: str, init: str, binaries: dict[str, str]) -> Path:
    """A service domain's image root, `name` in the lab dir: busybox, wrec and `init`, `binaries`
    from dom0's root, and an attacker's tools (every service domain can be attacked from)."""
    root = files.root / name
    base_root(files, root, init)
    copy_binaries(files.rootfs, root, binaries)
    install_attacker(files, root)
    return root


def stub_image(files: LabFiles, release: str) -> None:
    """A device-model stub domain's initramfs (libxl's Linux stub domain): Debian's QEMU and its
    libraries, xenstore-read/list, vchan-socket-proxy, the Xen modules, and the HVM guest's
    direct-boot kernel and image at the path its xl.cfg names (QEMU reads them from here)."""
    init = (FILES / "stub-init.sh").read_text()
    rootfs = files.rootfs

    def make() -> None:
        from harness.xen.payload import IMAGES  # (payload imports this module)

        root = domu_root(files, "stub-root", init, STUB_BINARIES)
        for data in STUB_DATA:
            if (rootfs / data).exists():
                shutil.copytree(rootfs / data, root / data, symlinks=True)
        boot = root / IMAGES.lstrip("/")
        boot.mkdir(parents=True)
        shutil.copy(files.vmlinuz, boot / "vmlinuz")
        shutil.copy(files.guest_cpio, boot / "guest.cpio")
        install_modules(files, release, STUB_MODULES, root)
        pack(root, files.stub_cpio)

    guest = (files.root / ".guest.stamp").read_text()  # the guest image and kernel it carries
    kernel = f"{files.vmlinuz.stat().st_size} {files.vmlinuz.stat().st_mtime_ns}"
    stage(files.root, "stub", f"{release} {STUB_MODULES} {STUB_BINARIES} {STUB_DATA} {init} {guest} {kernel} "
          f"{(FILES / 'wrec.c').read_text()} {(files.root / '.rootfs.stamp').read_text()} "
          + "".join((FILES / name).read_text() for name in ATTACKER), make)


def dd_image(files: LabFiles, release: str) -> None:
    """A driver domain's initramfs (one image; its roles come from the kernel command line)."""
    init = (FILES / "dd-init.sh").read_text()
    wrec = (FILES / "wrec.c").read_text()
    rootfs = files.rootfs

    def make() -> None:
        root = domu_root(files, "dd-root", init, DD_BINARIES)
        shutil.copytree(rootfs / "etc" / "xen", root / "etc" / "xen", symlinks=True)
        scripts = root / "opt" / "windsor" / "current" / "scripts"  # where the plan's xl.cfg names them
        scripts.mkdir(parents=True, exist_ok=True)
        for script in HOTPLUG:  # executable whatever the installed copy's mode (a wheel may not keep it)
            shutil.copy(FILES / script, scripts / script)
            (scripts / script).chmod(0o755)
        for sub in ("var/run/xen", "var/log/xen", "var/lib/xen", "var/lock"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        install_modules(files, release, DD_MODULES, root)
        pack(root, files.dd_cpio)

    scripts = "".join((FILES / name).read_text() for name in (*HOTPLUG, *ATTACKER))
    stage(files.root, "dd", f"{release} {DD_MODULES} {DD_BINARIES} {init} {wrec} {scripts}", make)
