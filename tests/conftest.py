"""Fixtures for the harness's own tests: real sim:// hosts, shut down whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import helpers
import pytest
from helpers import CADENCE

from harness.backend import get_host
from harness.backend.sim import SimHost
from harness.lab.machine import Lab
from harness.model import GuestSpec, fleet
from harness.topology import load_topology


@pytest.fixture
def booted() -> Iterator[tuple[SimHost, tuple[GuestSpec, ...]]]:
    """A disaggregated sim:// host with 6 guests, shut down after the test."""
    host = get_host("sim://")
    assert isinstance(host, SimHost)
    guests = fleet(6, 0)
    with host:
        host.boot(load_topology("disaggregated"), guests, CADENCE, 0)
        yield host, guests


@pytest.fixture(scope="session")
def matrix_junit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pytest suites` as the quick start runs it: the whole matrix on sim://, with its JUnit file
    and windsor-artifacts/ beside it (shared by the end-to-end and the report tests)."""
    junit = tmp_path_factory.mktemp("matrix") / "junit.xml"
    done = helpers.run(*helpers.pytest_argv("suites", "--junitxml", str(junit), "-q"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return junit


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The real-Xen lab (booted, or rebuilt and booted, if needed), stopped after the last lab test."""
    lab = Lab()
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab tests last: a 4 GB QEMU guest booting or shutting down stalls this 2-core machine for
    hundreds of milliseconds, which the timing-precise sim:// tests would measure."""
    items.sort(key=lambda item: item.get_closest_marker("lab") is not None)
