"""Files that are never seen half-written: written beside their final name, flushed to disk, then
renamed over it (a rename within one directory is atomic on POSIX). A process killed at any
moment leaves the previous complete file, or the complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def partial_name(path: str | Path) -> Path:
    """Where `path` is written before it is renamed into place (hidden, unique per process)."""
    p = Path(path)
    return p.with_name(f".{p.name}.partial-{os.getpid()}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Flush `tmp` to disk and rename it to `path` (then flush the directory entry too)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(Path(path).resolve().parent)


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it becomes `path`, on failure it is removed."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_name(final)
    try:
        yield tmp
        publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def nearest_existing(path: str | Path) -> Path:
    """`path`, or the nearest directory above it that exists."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable_dir(path: str | Path, what: str) -> None:
    """UsageError unless `path` is a directory this process can write in, or one it can make: the
    nearest directory above it that exists takes a new entry (tried with a probe directory, made and
    removed at once: permission bits do not tell for root, /proc or a read-only mount)."""
    from harness.errors import UsageError

    target = Path(path)
    too_long = next((part for part in target.parts if len(part.encode()) > 255), None)
    if too_long is not None or len(str(target).encode()) > 3000:
        shown = str(target) if len(str(target)) <= 60 else f"{str(target)[:40]}... ({len(str(target))} characters)"
        raise UsageError(f"{what}: {shown!r} is too long a path (names of at most 255 bytes, 3000 in all)")
    if target.exists() and not target.is_dir():
        raise UsageError(f"{what}: {str(target)!r} exists and is not a directory")
    probe = nearest_existing(target)
    if not probe.is_dir():
        raise UsageError(f"{what}: {str(probe)!r} is not a directory, so {str(target)!r} cannot be made")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".windsor-probe-", dir=probe))
    except OSError as exc:
        cannot = f", so {str(target)!r} cannot be made" if probe != target else ""
        raise UsageError(f"{what}: cannot write in {str(probe)!r} ({exc.strerror}){cannot}") from None
