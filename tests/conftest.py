"""Fixtures every layer may use: a real etcd cluster (tests/etcd.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from seatd.store.etcd import EtcdConfig
from tests.etcd import EtcdCluster, config_for

_sites = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """grpc.aio held for the whole session. Without it grpc shuts its asyncio poller down
    whenever the last aio object of a test is collected, and that shutdown joins the poller
    thread from wherever the collection ran: a landing run hung there for good (main thread
    in Thread.join under a structlog call). The extra reference, taken once from the main
    thread, is grpc's own advice (grpc/grpc#22365)."""
    grpc.aio.init_grpc_aio()


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A fresh 3-member cluster of this test's own, to kill, pause and restart members of."""
    with EtcdCluster(tmp_path / "etcd") as cluster:
        yield cluster


@pytest.fixture(scope="session")
def etcd_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """One 3-member cluster for the tests that leave it healthy (each in a site of its own)."""
    with EtcdCluster(tmp_path_factory.mktemp("etcd")) as cluster:
        yield cluster


@pytest.fixture
def etcd_site(etcd_shared: EtcdCluster) -> EtcdConfig:
    """seatd's settings for a new, empty site on the shared cluster."""
    return config_for(etcd_shared, f"t{next(_sites)}")
