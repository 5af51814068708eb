"""What the harness needs in a Xen host's control domain, and where it lives there: one versioned
prefix, ``/opt/windsor/<version>``, with ``/opt/windsor/current`` pointing at it, and the state
(lease journal, topology plan, guest disks, console records) under ``/var/lib/windsor``.

    bin/      windsor-lease (lease journal + watchdog), windsor-agent (recovery agent),
              windsor-topo (topology tool), windsor-console (guest record reader),
              windsor-boot (what runs at boot), windsor-xswatch (the devices' xenstore
              state changes), windsor-attempt (an isolation attempt), wstall (dom0 CPU stall,
              libxenctrl 4.17), wprobe (an isolation attempt through Xen's libraries)
    scripts/  windsor-vif, windsor-block (hotplug scripts, named by absolute path in xl.cfg)
    images/   vmlinux, dd.cpio, guest.cpio, stub.cpio (driver-domain, guest and device-model stub
              domain images), vmlinuz (the same kernel compressed, which an HVM guest's
              firmware loads)
    MANIFEST  "sha256  path" of every file above; VERSION

The same tree is baked into the ``lab://`` dom0 image and uploaded by ``windsor host prepare``
to any other host. VERSION names the tools' protocol: the harness version and a hash of the
scripts; a host whose VERSION differs is refused at session start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.lab.build import FILES, LabFiles, run, stage
from harness.lab.images import HOTPLUG

PREFIX = "/opt/windsor"
CURRENT = f"{PREFIX}/current"
BIN = f"{CURRENT}/bin"
SCRIPTS = f"{CURRENT}/scripts"
IMAGES = f"{CURRENT}/images"
STATE_ROOT = "/var/lib/windsor"
STATE = f"{STATE_ROOT}/state"
UNIT = "/etc/systemd/system/windsor-boot.service"  # on systemd hosts: windsor-boot at boot
SUPPORTED_XEN = ("4.17",)
TOOLS = ("windsor-lease", "windsor-agent", "windsor-topo", "windsor-console", "windsor-boot", "windsor-xswatch",
         "windsor-attempt")
# our C tools → the Xen 4.17 libraries each links (Debian's, at lab build time)
C_TOOLS = {"wstall": ("libxenctrl.so.4.17",),
           "wprobe": ("libxenctrl.so.4.17", "libxengnttab.so.1", "libxenforeignmemory.so.1", "libxenstore.so.4")}
IMAGE_FILES = ("vmlinux", "dd.cpio", "guest.cpio", "stub.cpio", "vmlinuz")


def tool(name: str) -> str:
    """A tool's path in the control domain (the harness never relies on dom0's PATH)."""
    return f"{BIN}/{name}"


@cache
def tools_version() -> str:
    """The version the host's tools must have: ours, plus a hash of every script and source."""
    try:
        base = version("windsor-harness")
    except PackageNotFoundError:
        base = "0"
    digest = hashlib.sha256()
    for name in (*TOOLS, *HOTPLUG, *(f"{c}.c" for c in C_TOOLS)):
        digest.update(name.encode() + b"\0" + (FILES / name).read_bytes())
    return f"{base}+{digest.hexdigest()[:12]}"


def unit_text() -> str:
    return ("[Unit]\nDescription=Windsor harness: end the leases a reboot ended, bring the planned topology back\n"
            "After=xen.service xendomains.service network-online.target\nWants=xen.service\n\n"
            f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={tool('windsor-boot')}\n\n"
            "[Install]\nWantedBy=multi-user.target\n")


def build_tool(files: LabFiles, name: str) -> Path:
    """One of `C_TOOLS`, linked against Debian's Xen 4.17 libraries (the only Xen series
    supported): built here, shipped to hosts, so a host needs no compiler."""
    out = files.root / name
    userland = files.root / "userland-root"
    source = (FILES / f"{name}.c").read_text()
    debs = sorted(p.name for p in (files.debs / "userland").glob("*.deb"))

    def make() -> None:
        shutil.rmtree(userland, ignore_errors=True)
        for deb in sorted((files.debs / "userland").glob("*.deb")):
            run("dpkg-deb", "-x", str(deb), str(userland))
        libdir = userland / "usr" / "lib" / "x86_64-linux-gnu"
        run("gcc", "-O2", "-Wall", "-Werror", f"-I{files.debs / 'dev' / 'root' / 'usr' / 'include'}",
            "-o", str(out), str(FILES / f"{name}.c"), f"-L{libdir}", *(f"-l:{lib}" for lib in C_TOOLS[name]),
            f"-Wl,-rpath-link,{libdir}")

    stage(files.root, name, f"{source} {debs}", make)
    return out


def sources(files: LabFiles) -> dict[str, Path]:
    """Every payload file: path under the version dir → the local file (images from the lab build)."""
    out = {f"bin/{name}": FILES / name for name in TOOLS}
    out |= {f"bin/{name}": build_tool(files, name) for name in C_TOOLS}
    out |= {f"scripts/{name}": FILES / name for name in HOTPLUG}
    images = {"vmlinux": files.root / "vmlinux", "dd.cpio": files.dd_cpio, "guest.cpio": files.guest_cpio,
              "stub.cpio": files.stub_cpio, "vmlinuz": files.vmlinuz}
    out |= {f"images/{name}": path for name, path in images.items()}
    return out


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(files: dict[str, Path]) -> dict[str, str]:
    return {rel: sha256(path) for rel, path in sorted(files.items())}


def manifest_text(sums: dict[str, str]) -> str:
    return "".join(f"{digest}  {rel}\n" for rel, digest in sorted(sums.items()))


def parse_manifest(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 2 and len(words[0]) == 64:
            out[words[1]] = words[0]
    return out


def install_into(root: Path, files: dict[str, Path]) -> None:
    """The payload into an image's root (the lab's dom0): the same tree prepare uploads."""
    vdir = root / PREFIX.lstrip("/") / tools_version()
    shutil.rmtree(root / PREFIX.lstrip("/"), ignore_errors=True)
    for rel, src in files.items():
        dest = vdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dest)
        dest.chmod(0o755 if rel.startswith(("bin/", "scripts/")) else 0o644)
    (vdir / "MANIFEST").write_text(manifest_text(manifest(files)))
    (vdir / "VERSION").write_text(tools_version() + "\n")
    os.symlink(tools_version(), root / CURRENT.lstrip("/"))
