"""A report page in a real headless Chromium (Debian's ``chromium``), with the network cut off:
what the page shows once loaded (images decoded, tables and their rows, what it tried to fetch)
and a full-page PNG of it."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.atomic import publish
from harness.errors import HarnessError

PROBE_ID = "windsor-probe"
PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const out = {
    title: document.title,
    images: [...document.images].map(i => ({id: i.id, ok: i.complete && i.naturalWidth > 0,
                                            width: i.naturalWidth, height: i.naturalHeight})),
    tables: Object.fromEntries([...document.querySelectorAll("table")].map((t, n) => [t.id || ("table" + n),
                                                                                       t.rows.length])),
    fetched: performance.getEntriesByType("resource").map(e => e.name),
    height: document.documentElement.scrollHeight,
  };
  const pre = document.createElement("pre");
  pre.id = "PROBE_ID";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 0));
</script>""".replace("PROBE_ID", PROBE_ID)
# no network at all: every host name fails to resolve, and any proxy is a closed port
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--proxy-server=127.0.0.1:9", "--virtual-time-budget=10000")


@dataclass(frozen=True)
class Seen:
    """What the browser saw of a page."""

    title: str
    images: tuple[dict[str, Any], ...]
    tables: dict[str, int]  # table id -> rows (header rows included)
    fetched: tuple[str, ...]  # resources the page asked for (none, for an offline page)
    height: int
    dom: str  # the DOM after load, as the browser serialised it


def executable() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    exe = executable()
    if exe is None:
        raise HarnessError("no chromium on PATH: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="windsor-chromium-") as profile:
        done = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                              timeout=timeout, check=False)
    if done.returncode != 0:
        raise HarnessError(f"chromium exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done


def look(page: Path, timeout: float = 120.0) -> Seen:
    """Load `page` (a copy with a probe script added) and report what the browser made of it."""
    with tempfile.TemporaryDirectory(prefix="windsor-probe-") as tmp:
        probed = Path(tmp) / page.name
        text = page.read_text()
        probed.write_text(text.replace("</body>", PROBE + "\n</body>") if "</body>" in text else text + PROBE)
        done = _chromium(["--dump-dom", probed.as_uri()], timeout)
    dom = done.stdout
    start = dom.find(f'<pre id="{PROBE_ID}">')
    if start < 0:
        raise HarnessError(f"chromium did not run the page's load event (no probe in {len(dom)} bytes of DOM)")
    raw = dom[start + len(PROBE_ID) + 11: dom.index("</pre>", start)]
    facts = json.loads(html.unescape(raw))
    return Seen(facts["title"], tuple(facts["images"]), dict(facts["tables"]), tuple(facts["fetched"]),
                int(facts["height"]), dom[:start])


def screenshot(page: Path, png: Path, width: int = 1400, timeout: float = 120.0) -> Path:
    """A PNG of the page at `width` CSS pixels: all of it up to 16000 pixels tall (a longer page is cut
    there: a bigger window is what Chromium renders slowly or not at all)."""
    height = min(max(look(page, timeout).height, 600), 16000)
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.stem}.partial-{os.getpid()}.png")  # chromium picks the format by extension
    try:
        _chromium([f"--screenshot={tmp.resolve()}", f"--window-size={width},{height}", page.resolve().as_uri()],
                  timeout)
        if not tmp.is_file() or not tmp.read_bytes().startswith(b"\x89PNG"):
            raise HarnessError(f"chromium wrote no PNG screenshot of {page}")
        publish(tmp, png)
    finally:
        tmp.unlink(missing_ok=True)
    return png
