"""The guests' workload records, read from their console logs in the control domain (copied from
each guest's console pty by windsor-console, harness/lab/files/): lines carrying
``WREC <unix s.ns> <device> <seq> [<latency s>]`` (harness/lab/files/wrec.c); a flood record
(``DEVICE-flood``) stands for SEQ requests, each kept as one time, as on sim:// where each flood
request is a record. One remote command per poll returns every guest's new bytes."""

from __future__ import annotations

import bisect
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.xen.payload import STATE

RECORD = re.compile(rb"WREC (\d+\.\d{9}) ([a-z][a-z-]*) (\d+)(?: (\d+\.\d+))?\r?$")  # [latency s]
# xenconsoled's --timestamp=guest prefix; it also lands inside a line the console delivered in
# two chunks ("WREC ... disk 1[2026-11-23 22:18:17] \n"), so every occurrence is dropped
STAMP = re.compile(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ")
LOG_DIR = f"{STATE}/console"
MARK = "@@WINDSOR-LOG@@"


@dataclass
class Records:
    """Every guest's records so far, by (guest, device); `acked[guest]` the disk writes;
    `booted[guest]` how often its init started."""

    guests: tuple[str, ...]
    offsets: dict[str, int] = field(default_factory=dict)
    partial: dict[str, bytes] = field(default_factory=dict)
    times: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    acked: dict[str, set[int]] = field(default_factory=dict)
    latency: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    booted: dict[str, int] = field(default_factory=dict)  # guest → its boot records (its init ran)

    def command(self) -> str:
        """A shell command printing, per guest, a mark line with the log's size, then the bytes
        after our offset (only up to that size, so the next poll starts exactly there)."""
        parts = []
        for g in self.guests:
            path = shlex.quote(f"{LOG_DIR}/{g}.log")
            off = self.offsets.get(g, 0)
            parts.append(
                f"s=$(stat -c %s {path} 2>/dev/null || echo 0); echo {MARK} {g} $s; "
                f"[ $s -gt {off} ] && tail -c +{off + 1} {path} | head -c $(($s - {off}))"
            )
        return "; ".join(parts) + "; true"

    def feed(self, out: bytes) -> None:
        """Take one command's output: per guest a mark line, then exactly the new bytes."""
        mark, at = MARK.encode() + b" ", 0
        while (at := out.find(mark, at)) >= 0:
            end = out.find(b"\n", at)
            if end < 0:
                return
            name, size_text = out[at + len(mark):end].decode().split()
            size, off = int(size_text), self.offsets.get(name, 0)
            if size < off:  # a new log: the guest was created again
                self.offsets[name], self.partial[name] = 0, b""
                at = end + 1
                continue
            body = out[end + 1:end + 1 + size - off]
            if len(body) != size - off:
                return  # a cut-off answer: read these bytes again next time
            self.offsets[name] = size
            self._lines(name, self.partial.get(name, b"") + body)
            at = end + 1 + len(body)

    def _lines(self, guest: str, data: bytes) -> None:
        *lines, rest = STAMP.sub(b"", data).split(b"\n")
        self.partial[guest] = rest
        for line in lines:
            m = RECORD.search(line)
            if not m:
                continue
            t, device, seq = float(m[1]), m[2].decode(), int(m[3])
            if device == "boot":
                self.booted[guest] = self.booted.get(guest, 0) + 1
                continue
            times = self.times.setdefault((guest, device), [])
            if device.endswith("-flood"):  # wrec's flood workers: SEQ requests done since their last record
                at = bisect.bisect_right(times, t)
                times[at:at] = [t] * seq
                continue
            if not times or t >= times[-1]:
                times.append(t)
                if m[4]:
                    self.latency.setdefault((guest, device), []).append((t, float(m[4])))
            if device == "disk":
                self.acked.setdefault(guest, set()).add(seq)

    def lost(self, guest: str, on_disk: Iterable[int], slots: int = 8192) -> int:
        """Acknowledged writes of `guest` that are not on its disk (slots reused after `slots`
        writes only count from the newest round)."""
        acked = self.acked.get(guest, set())
        if not acked:
            return 0
        newest = max(acked)
        present = set(on_disk)
        return sum(1 for seq in acked if seq > newest - slots and seq not in present)
