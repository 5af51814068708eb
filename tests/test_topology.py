"""Topology files: built-ins load, placement follows docs/design.md, bad files give one clear error."""

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.fault import Blast, get_fault
from harness.topology import load_topology


def test_builtins_place_roles_as_designed() -> None:
    mono, dis = load_topology("monolithic"), load_topology("disaggregated")
    assert mono.in_dom0_kernel("netback") and mono.domain_of("console") == "dom0"
    assert dis.domain_of("netback") == "netdd" and dis.domain_of("device-model", "g01") == "g01-dm"
    assert not dis.in_dom0_kernel("blkback")


def blast_of(fault: str, topology: str, role: str) -> Blast:
    return get_fault(fault).blast(load_topology(topology), role)


def test_blast_radius_follows_the_table() -> None:
    assert blast_of("kill", "monolithic", "netback").host_crash
    assert not blast_of("stall", "monolithic", "netback").host_crash
    assert blast_of("stall", "monolithic", "netback").roles >= {"console", "xenstore", "blkback"}
    assert blast_of("kill", "disaggregated", "netback").roles == {"netback"}
    assert blast_of("kill", "monolithic", "console").roles == {"console"}


def test_shards_spread_a_role_over_domains_by_guest() -> None:
    guests = ("g01", "g02", "g03", "g04")
    tenant = load_topology("per-tenant").bind(guests)
    assert [tenant.domain_of("blkback", g) for g in guests] == [f"blkdd-{g}" for g in guests]
    assert tenant.domain_of("blkback") == "blkdd-g01"  # a fault on the role as a whole: the first shard
    assert tenant.roles_in("netdd-g03") == {"netback"} and tenant.domain_of("console", "g02") == "console-dom"
    two = load_topology("two-netdds").bind(guests)
    assert [two.domain_of("netback", g) for g in guests] == ["netdd1", "netdd1", "netdd2", "netdd2"]
    shards = {d["name"]: d.get("guests") for d in two.as_dict()["domains"]}
    assert shards["netdd1"] == ["g01", "g02"] and shards["netdd2"] == ["g03", "g04"] and shards["blkdd"] is None
    assert get_fault("kill").blast(tenant, "blkback", "g02").roles == {"blkback"}
    assert load_topology("monolithic").cpu_pct == 100


@pytest.mark.parametrize("text, fragment", [
    ('name = "x"\ncpu_pct = 0', "cpu_pct must be a whole percent"),
    ('name = "x"\ncpu_pct = 101', "cpu_pct must be a whole percent"),
    ('name = "x"\ncpu_pct = true', "cpu_pct must be a whole percent"),
    ('name = "x"\n[[domain]]\nname = "a"\nroles = ["netback"]\nshards = 0', "shards must be"),
    ('name = "x"\n[[domain]]\nname = "a"\nroles = ["netback"]\nshards = "tenant"', "shards must be"),
    ('name = "x"\n[[domain]]\nname = "a"\nroles = ["netback"]\nshards = 65', "shards must be"),
    ("name = 1", "needs name"),
    ('name = "x"\ndevice_model = "qemu"', "device_model"),
    ('name = "x"\n[[domain]]\nname = "a"\nroles = ["netbak"]', "unknown role"),
    ('name = "x"\n[[domain]]\nname = "a"\nroles = ["netback"]\n[[domain]]\nname = "b"\nroles = ["netback"]',
     "placed twice"),
    ('name = "x"\n[[domain]]\nname = "A;rm -rf /"\nroles = []', "bad domain name"),
    ("name = [", "not valid TOML"),
])
def test_bad_topology_file(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=fragment):
        load_topology(str(path))
