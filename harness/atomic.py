"""Files that are never seen half-written: written beside their final name, flushed to disk, then
renamed over it (a rename within one directory is atomic on POSIX). A process killed at any
moment leaves the previous complete file, or the complete new one."""

from __future__ import annotations

import contextlib
import os
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


def check_writable_dir(path: str | Path, what: str) -> None:
    """UsageError unless `path` is a directory this process can write in, or one it can create
    (the nearest existing directory above it is writable). Touches nothing."""
    from harness.errors import UsageError

    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{what}: {str(target)!r} exists and is not a directory")
    probe = target
    while not probe.exists():
        if probe == probe.parent:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{what}: {str(probe)!r} is not a directory, so {str(target)!r} cannot be made")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: {str(probe)!r} is not writable" +
                         (f", so {str(target)!r} cannot be made" if probe != target else ""))
