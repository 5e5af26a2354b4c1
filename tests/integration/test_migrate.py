"""`seatd migrate`: a site's seat table into etcd and back, the same site on arrival."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from seatd.cli import main
from seatd.errors import StateError
from seatd.model import (
    Ended,
    Ending,
    EndKind,
    Granted,
    JournalPruned,
    LicenceInstalled,
    TokenCreated,
)
from seatd.store import LmdbStore, Store, StoreConfig
from seatd.store.etcd import EtcdConfig, EtcdStore
from seatd.store.migrate import to_etcd, to_lmdb
from tests.etcd import lead
from tests.integration.test_store import WHEN, session


def a_site(state_dir: Path) -> None:
    """An LMDB site with everything a table holds: sessions, an eviction kept as an ending,
    a token, a licence with its history, a pruned journal (a checkpoint)."""
    store = LmdbStore(StoreConfig(state_dir))
    store.commit([Granted(session(i)) for i in range(1, 5)])
    store.commit([Ended(Ending(session(2), EndKind.EVICTED, "lunch", "admin", WHEN))])
    store.commit([TokenCreated("ops", "admin", "ab" * 32, "admin", WHEN)])
    store.commit([LicenceInstalled("LICENCE TEXT", "S-1", 5, "import", "admin", WHEN)])
    store.commit([JournalPruned(up_to_seq=2, at=WHEN)])
    store.close()


def everything(store: Store) -> tuple[object, ...]:
    """What makes the site the same site: every record a reader sees."""
    snap = store.load()
    return (
        snap,
        store.tokens(),
        store.licence_history(),
        store.journal_entries(),
        store.recorded_head(),
        store.verify_journal(),
    )


def test_a_site_moves_to_etcd_and_back_unchanged(tmp_path: Path, etcd_site: EtcdConfig) -> None:
    """LMDB -> etcd -> LMDB: sessions, tokens, licence, endings and the journal (chain,
    checkpoint and head) are the same at each step, and the chain verifies."""
    a_site(tmp_path / "lmdb")
    source = LmdbStore(StoreConfig(tmp_path / "lmdb"))
    before = everything(source)
    source.close()
    assert before[-1] == (6, None, 8)  # the chain verifies, from the prune's checkpoint

    moved = to_etcd(tmp_path / "lmdb", etcd_site)
    assert (moved.sessions, moved.journal_entries) == (3, 6)
    in_etcd = EtcdStore(etcd_site, create=False)
    assert everything(in_etcd) == before
    in_etcd.close()

    to_lmdb(etcd_site, tmp_path / "back")
    back = LmdbStore(StoreConfig(tmp_path / "back"))
    assert everything(back) == before
    back.close()


def test_the_migrated_site_carries_on_under_a_leader(
    tmp_path: Path, etcd_site: EtcdConfig
) -> None:
    """A leader on the migrated site commits on top of the copied chain."""
    a_site(tmp_path / "lmdb")
    to_etcd(tmp_path / "lmdb", etcd_site)
    store = EtcdStore(etcd_site, fence=lead(etcd_site))
    store.load()
    store.commit([Granted(session(9))])
    assert store.verify_journal() == (7, None, 9)
    store.close()


def test_migrating_into_a_site_that_holds_keys_is_refused(
    tmp_path: Path, etcd_site: EtcdConfig
) -> None:
    """An etcd site prefix holding anything is never written into; it says what to do."""
    a_site(tmp_path / "lmdb")
    EtcdStore(etcd_site).close()  # a new, empty site: it has a table
    with pytest.raises(StateError, match=r"migrates only into an empty prefix.*etcdctl del"):
        to_etcd(tmp_path / "lmdb", etcd_site)


def test_migrating_into_a_used_state_directory_is_refused(
    tmp_path: Path, etcd_site: EtcdConfig
) -> None:
    """`--to-lmdb` never replaces a seat table."""
    a_site(tmp_path / "lmdb")
    to_etcd(tmp_path / "lmdb", etcd_site)
    with pytest.raises(StateError, match="not empty"):
        to_lmdb(etcd_site, tmp_path / "lmdb")


def test_the_command_moves_a_site_and_says_so(tmp_path: Path, etcd_site: EtcdConfig) -> None:
    """`seatd migrate --to-etcd URLS --site NAME` reports what it moved; a second run into
    the same site fails with the reason."""
    a_site(tmp_path / "lmdb")
    args = [
        "migrate",
        "--state-dir",
        str(tmp_path / "lmdb"),
        "--to-etcd",
        ",".join(etcd_site.endpoints),
        "--site",
        etcd_site.site,
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "3 sessions, 6 journal entries" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1
    assert "already holds" in again.output
