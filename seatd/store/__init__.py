"""The state store: one interface (`Store`), two backends.

`seatd.store.lmdb` is the embedded default (one server); `seatd.store.etcd` keeps the same
table in an etcd cluster, under one key prefix per site, for cluster mode. Nothing outside
this package knows which one is underneath; `open_store` picks it.
"""

from __future__ import annotations

from seatd.store.base import Snapshot, Store
from seatd.store.etcd import EtcdConfig, EtcdStore, Fence
from seatd.store.lmdb import DEFAULT_MAP_SIZE, SCHEMA_VERSION, LmdbStore, StoreConfig, restore

__all__ = [
    "DEFAULT_MAP_SIZE",
    "SCHEMA_VERSION",
    "EtcdConfig",
    "EtcdStore",
    "Fence",
    "LmdbStore",
    "Snapshot",
    "Store",
    "StoreConfig",
    "open_store",
    "restore",
]


def open_store(
    config: StoreConfig,
    etcd: EtcdConfig | None = None,
    *,
    create: bool = False,
    fence: Fence | None = None,
) -> Store:
    """The configured store, opened (and checked) for the daemon: the site's table in etcd
    when `etcd` is given (cluster mode, writing under `fence`), else the LMDB one."""
    if etcd is not None:
        return EtcdStore(etcd, fence=fence)
    return LmdbStore(config, create=create)
