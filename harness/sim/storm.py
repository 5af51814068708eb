"""A guest that floods xenstore (the change ``xenstore-storm``, harness/sim/changes.py): while
its flag is raised, it writes its own nodes (``/local/domain/ID/data/storm/N``, 64 of them, in
turn) as fast as xenstore answers, and adds a watch on them with every write until xenstored
refuses one (its watch quota, harness/sim/xenstore.py; at most 1024), so that each write fires
as many watch events as xenstored lets it have. Every 100 writes it records an ``xs-write`` line
in its records (the harness counts them: `CaseResult.guest_events`); a refused watch, once, an
``xs-quota`` line with the count it had. When the flag goes, it takes its watches and nodes
away. Checked at every heartbeat: the storm starts within one cadence of the flag. wrec's storm
(harness/lab/files/wrec.c) does the same on Xen."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

from harness.sim.changes import raised
from harness.sim.xsclient import XsClient

KEYS, MAX_WATCHES, RECORD_EVERY = 64, 1024, 100


class Storm:
    def __init__(self, xs: XsClient, domid: int, run_dir: str, name: str, stop: threading.Event,
                 record: Callable[[str, int], None]) -> None:
        self.xs, self.run_dir, self.name, self.stop, self.record = xs, run_dir, name, stop, record
        self.root = f"/local/domain/{domid}/data/storm"
        self.thread: threading.Thread | None = None

    def on(self) -> bool:
        return raised(self.run_dir, "storm", self.name) and not self.stop.is_set()

    def check(self) -> None:
        if (self.thread is None or not self.thread.is_alive()) and self.on():
            self.thread = threading.Thread(target=self.run, name="storm", daemon=True)
            self.thread.start()

    def run(self) -> None:
        events: queue.Queue[str] = queue.Queue()
        tokens: list[str] = []
        n, refused = 0, False
        try:
            while self.on():
                self.xs.write(f"{self.root}/{n % KEYS}", n)
                if not refused and len(tokens) < MAX_WATCHES:
                    token = f"storm-{os.getpid()}-{len(tokens)}"
                    if self.xs.watch_checked(self.root, token, events):
                        tokens.append(token)
                    else:
                        refused = True
                        self.record("xs-quota", len(tokens))  # xenstored said no to one more watch
                while not events.empty():
                    events.get_nowait()
                n += 1
                if n % RECORD_EVERY == 0:
                    self.record("xs-write", n)  # one record per 100 writes: the harness counts them
        except OSError:
            pass  # xenstore went away: the next heartbeat starts again if the flag is still up
        finally:
            for token in tokens:
                self.xs.unwatch(token)
            try:
                self.xs.rm(self.root)
            except OSError:
                pass
