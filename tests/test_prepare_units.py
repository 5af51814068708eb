"""`windsor host prepare`'s decisions, from what a host's survey says (harness/xen/prepare.py):
one line naming the problem and its fix for every host the harness cannot serve, and the
payload's identity. The survey itself runs on a real host in tests/test_stock.py."""

from __future__ import annotations

import pytest
from helpers import run

from harness.xen.payload import parse_manifest, tools_version
from harness.xen.prepare import Facts, memory_needed, refusal

URL = "xen+ssh://root@xen-1"
# what the survey printed on the stock lab host (Debian bookworm, Xen 4.17.5)
STOCK = """xl=/usr/sbin/xl
xen_major=4
xen_minor=17
xen_extra=.5
free_memory=3028
uid=0
bridge=1
storage_mb=2100
libxenctrl=/usr/lib/x86_64-linux-gnu/libxenctrl.so.4.17
systemd=1
installed=
subnet=0
missing=
"""


def facts(**change: str) -> Facts:
    lines = dict(line.split("=", 1) for line in STOCK.splitlines())
    for key, value in change.items():
        if value == "-":
            lines.pop(key, None)
        else:
            lines[key] = value
    return Facts.parse("\n".join(f"{k}={v}" for k, v in lines.items()))


def test_the_stock_host_is_accepted() -> None:
    found = facts()
    assert (found.xen, found.free_mb, found.systemd, found.installed) == ("4.17.5", 3028, True, "")
    assert refusal(URL, found, memory_needed()) is None


@pytest.mark.parametrize(("change", "words"), [
    ({"xapi": "1"}, "xapi"),
    ({"uid": "1000"}, "root"),
    ({"xl": ""}, "no xl"),
    ({"xen_major": "-", "xen_minor": "-", "xen_extra": "-"}, "not running under Xen"),
    ({"xen_minor": "19", "xen_extra": ".1"}, "Xen 4.19.1; the harness supports Xen 4.17 only"),
    ({"missing": "flock stty "}, "lacks flock, stty"),
    ({"libxenctrl": ""}, "libxenctrl.so.4.17"),
    ({"free_memory": "300"}, "300 MB free for domains"),
    ({"bridge": "-"}, "no bridge support"),
    ({"storage_mb": "40"}, "40 MB free under /var/lib"),
    ({"subnet": "1"}, "198.51.100.0/24"),
])
def test_a_host_that_cannot_serve_is_refused_in_one_line(change: dict[str, str], words: str) -> None:
    why = refusal(URL, facts(**change), memory_needed())
    assert why is not None and words in why and "\n" not in why, why


def test_memory_need_is_the_largest_topology() -> None:
    assert memory_needed() == 2 * 192 + 4 * 96 + 64


def test_the_tools_version_names_the_scripts() -> None:
    version = tools_version()
    assert version.startswith("0.1.0+") and len(version.split("+")[1]) == 12


def test_a_damaged_manifest_line_is_ignored() -> None:
    good = "a" * 64
    assert parse_manifest(f"{good}  bin/windsor-lease\nnot a line\n{'b' * 10}  bin/x\n") == {"bin/windsor-lease": good}


@pytest.mark.parametrize(("url", "words"), [
    ("sim://", "works on Xen hosts"),
    ("xen+ssh://-oProxyCommand=touch%20/tmp/x", "bad host name"),
    ("xen+ssh://root@127.0.0.1:1", "Connection refused"),
])
def test_host_commands_refuse_bad_hosts_in_one_line(url: str, words: str) -> None:
    for action in ("prepare", "status", "remove"):
        done = run("windsor", "host", action, url)
        assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1, (
            action, done.stdout, done.stderr)
