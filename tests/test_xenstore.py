"""xenstore: state survives a restart of the service; watches fire on registration and change."""

from pathlib import Path

from harness.sim.xenstore import Store, XenstoreService
from harness.sim.xsclient import XsClient


def test_state_survives_restart_and_torn_journal_line(tmp_path: Path) -> None:
    journal = str(tmp_path / "xs.journal")
    store = Store(journal)
    store.change("write", "/local/domain/1/name", "g01")
    store.change("write", "/local/domain/1/device/vif/0/state", "4")
    store.change("rm", "/local/domain/1/device")
    with open(journal, "a") as fh:
        fh.write('["write", "/torn"')  # a crash in the middle of an unacknowledged change
    again = Store(journal)
    assert again.read("/local/domain/1/name") == "g01"
    assert again.read("/local/domain/1/device/vif/0/state") is None
    assert again.read("/torn") is None


def test_watch_fires_on_registration_and_on_change(tmp_path: Path) -> None:
    sock = str(tmp_path / "xs.sock")
    XenstoreService(sock, str(tmp_path / "j")).start()
    xs = XsClient(sock)
    try:
        events = xs.watch("/local/domain/3", "t")
        assert events.get(timeout=5) == "/local/domain/3"
        xs.write("/local/domain/3/backend/vif/1/0/state", 2)
        assert events.get(timeout=5) == "/local/domain/3/backend/vif/1/0/state"
        xs.write("/local/domain/4/x", 1)  # outside the watch
        xs.rm("/local/domain/3")
        assert events.get(timeout=5) == "/local/domain/3"
        assert xs.ls("/local/domain") == ["4"]
    finally:
        xs.stop.set()


def test_a_guest_is_held_to_the_watch_quota_and_a_service_domain_is_not(tmp_path: Path) -> None:
    """As oxenstored's quota-maxwatch: a guest's connection gets WATCH_QUOTA watches, then EQUOTA
    (and no first event for the refused one); dom0's connection is not held to it."""
    import queue

    from harness.sim.xenstore import WATCH_QUOTA
    sock = str(tmp_path / "xs.sock")
    XenstoreService(sock, str(tmp_path / "j")).start()
    guest, dom0 = XsClient(sock, guest=7), XsClient(sock)
    try:
        events: queue.Queue[str] = queue.Queue()
        guest.ls("/local/domain")  # connected first: a watch armed before would also be replayed, its first event twice
        got = [guest.watch_checked("/local/domain/7/data", f"w{i}", events) for i in range(WATCH_QUOTA + 3)]
        assert got == [True] * WATCH_QUOTA + [False] * 3
        fired = [events.get(timeout=5) for _ in range(WATCH_QUOTA)]
        assert fired == ["/local/domain/7/data"] * WATCH_QUOTA and events.empty()
        guest.write("/local/domain/7/data/x", 1)  # every accepted watch fires, the refused ones do not
        assert [events.get(timeout=5) for _ in range(WATCH_QUOTA)] == ["/local/domain/7/data/x"] * WATCH_QUOTA
        assert all(dom0.watch_checked("/local/domain/0", f"d{i}", queue.Queue()) for i in range(WATCH_QUOTA + 3))
        guest.unwatch("w0")
        assert guest.ls("/local/domain/7") == ["data"] and guest.watch_checked("/local/domain/7", "again", events)
    finally:
        guest.stop.set()
        dom0.stop.set()


def test_a_domain_reaches_only_what_the_permissions_give_it(tmp_path: Path) -> None:
    """xenstore's permissions, as Xen's xenstored checks them: a device's two directories as libxl
    sets them (each end owns its own, the other end may read it), a guest's own node closed to the
    others, a node a domain creates owned by it; dom0 (a connection that never says who it is)
    may do anything, and a connection cannot become another domain."""
    from harness.sim.xenbus import attach

    sock = str(tmp_path / "xs.sock")
    XenstoreService(sock, str(tmp_path / "j")).start()
    dom0, netdd, g5, g6 = XsClient(sock), XsClient(sock, domid=3), XsClient(sock, guest=5), XsClient(sock, guest=6)
    try:
        dom0.write("/local/domain/5/name", "g05")
        attach(dom0, 5, 3, "vif")
        attach(dom0, 6, 4, "vbd")
        for xs, path, ok in ((netdd, "/local/domain/5/device/vif/0/state", True),  # its frontend's
                             (netdd, "/local/domain/3/backend/vif/5/0/state", True),  # its own
                             (g5, "/local/domain/3/backend/vif/5/0/state", True),  # its backend's
                             (g5, "/local/domain/5/name", True),
                             (netdd, "/local/domain/5/name", False),  # the guest's own node
                             (netdd, "/local/domain/6/device/vbd/0/state", False),  # not its device
                             (netdd, "/local/domain/4/backend/vbd/6/0/state", False),  # another backend's
                             (g6, "/local/domain/5/device/vif/0/state", False),  # another guest's
                             (dom0, "/local/domain/6/device/vbd/0/state", True)):
            answer = xs.call({"op": "read", "path": path})
            assert answer.get("ok") is ok and (ok or answer.get("error") == "EACCES"), (xs.domid, path, answer)
        assert netdd.call({"op": "write", "path": "/local/domain/3/backend/vif/5/0/state", "value": "2"})["ok"]
        refused = netdd.call({"op": "write", "path": "/local/domain/5/device/vif/0/state", "value": "6"})
        assert refused["error"] == "EACCES"
        assert g5.call({"op": "write", "path": "/local/domain/5/data/x", "value": "1"})["ok"]  # its own data
        assert g5.call({"op": "getperms", "path": "/local/domain/5/data/x"})["value"] == ["n5"]
        assert g6.call({"op": "read", "path": "/local/domain/5/data/x"})["error"] == "EACCES"
        assert g5.call({"op": "setperms", "path": "/local/domain/5/data/x", "perms": ["r5"]})["ok"]  # its owner
        assert g6.call({"op": "read", "path": "/local/domain/5/data/x"})["ok"]  # now readable by all
        taken = g6.call({"op": "setperms", "path": "/local/domain/5/data/x", "perms": ["b6"]})
        assert taken["error"] in ("EACCES", "EPERM")
        assert g6.call({"op": "introduce", "domid": 0})["error"] == "EPERM"  # it stays domain 6
    finally:
        for xs in (dom0, netdd, g5, g6):
            xs.close()
