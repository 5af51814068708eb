"""Commands on a Xen host's control domain through testinfra (its ssh or local backend).

Every command is built with shlex quoting (`q`) and bounded twice: a
``timeout`` on the host, and ssh keep-alives that drop a connection to a host that stopped
answering, so a stalled or crashed host cannot hang the harness.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import testinfra
from testinfra.backend.base import CommandResult

from harness.errors import HostError

log = logging.getLogger("windsor.xen")


@dataclass(frozen=True)
class Done:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0


def q(word: str) -> str:
    """`word` as one inert shell word, whatever it contains (``; rm -rf /``, ``$(...)``, newlines)."""
    return shlex.quote(word)


class Remote:
    """One control domain. `url` is a testinfra host spec (``ssh://root@host:22``, ``local://``)."""

    def __init__(self, url: str, **backend_args: str) -> None:
        self.url = url
        self.host = testinfra.get_host(url, **backend_args)

    def run(self, command: str, timeout: float = 30.0) -> Done:
        """Run `command` under ``sh -c`` with a remote timeout; never raises for a failing
        command, only for a broken channel. Callers quote what they put in (`q`)."""
        wrapped = f"timeout -k 2 {timeout:g} sh -c {shlex.quote(command)}"
        started = time.monotonic()
        try:
            res: CommandResult = self.host.run(wrapped)
        except Exception as exc:  # testinfra wraps ssh failures in assorted exception types
            said = exc.args[0] if exc.args else exc
            if isinstance(said, CommandResult):  # ssh itself failed (255): what it said
                said = (said.stderr.strip().splitlines() or ["ssh failed"])[-1]
            raise HostError(f"{self.url}: cannot run a command: {said}") from None
        done = Done(res.rc, res.stdout, res.stderr, time.monotonic() - started)
        if done.rc == 124:
            log.warning("%s: %r timed out after %.0fs on the host", self.url, command[:80], timeout)
        return done

    def check(self, command: str, timeout: float = 30.0) -> str:
        """`run`, but HostError (with what the host said) unless it succeeded; returns stdout."""
        done = self.run(command, timeout=timeout)
        if not done.ok:
            said = (done.err.strip() or done.out.strip())[-300:]
            raise HostError(f"{self.url}: {command[:100]!r} failed ({done.rc}): {said}")
        return done.out

    def put(self, local: Path, dest: str, timeout: float = 900.0) -> None:
        """Copy a local file to `dest` on the host (its directory made), gzip'd on the way, through
        the same channel as the commands (testinfra's ssh command line: same user, port, key)."""
        command = f"mkdir -p {shlex.quote(str(Path(dest).parent))} && gzip -dc > {shlex.quote(dest)}"
        backend = self.host.backend
        if self.url.startswith("local://"):
            line = f"sh -c {shlex.quote(command)}"
        else:  # testinfra builds ssh's command line; it has no file transfer of its own
            cmd, args = backend._build_ssh_command(command)
            line = backend.get_command(" ".join(cmd), *args)
        try:
            done = subprocess.run(f"gzip -1 -c {shlex.quote(str(local))} | {line}", shell=True, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HostError(f"{self.url}: copying {local.name} took over {timeout:.0f}s") from None
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip()[-300:]
            raise HostError(f"{self.url}: copying {local.name} to {dest} failed ({done.returncode}): {said}")

    def answers(self) -> bool:
        try:
            return self.run("true", timeout=10).ok
        except HostError:
            return False

    def write_files(self, base: str, files: dict[str, str], timeout: float = 60.0) -> None:
        """Replace the files under `base` (relative names → text) in one command, each written
        to a temporary name and renamed, so a half-written file is never seen."""
        parts = ["set -e", f"mkdir -p {shlex.quote(base)}"]
        for name, text in sorted(files.items()):
            path = f"{base}/{name}"
            parts.append(f"mkdir -p \"$(dirname {shlex.quote(path)})\"")
            parts.append(f"printf %s {shlex.quote(text)} > {shlex.quote(path + '.tmp')}")
            parts.append(f"mv -f {shlex.quote(path + '.tmp')} {shlex.quote(path)}")
        self.check("\n".join(parts), timeout=timeout)
