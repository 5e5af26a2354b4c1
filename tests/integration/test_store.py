"""The store contract, on both backends (LMDB, etcd): one transaction per batch, reopened
intact; and the LMDB store's own errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import lmdb
import pytest

from seatd.errors import StateError, StorageFailed
from seatd.model import (
    ENDINGS_MAX_AGE,
    Ended,
    Ending,
    EndKind,
    Granted,
    Holder,
    JournalPruned,
    Session,
)
from seatd.store import SCHEMA_VERSION, LmdbStore, Store, StoreConfig, plan
from tests.integration.conftest import Backend

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def session(sid: int, user: str = "AA") -> Session:
    return Session(
        sid,
        Holder(user, f"{user} name", "PC-1", "10.0.0.1", "15"),
        f"k{sid}",
        f"token-{sid}",
        WHEN,
        WHEN,
        0.0,
        35.0,
    )


def test_committed_sessions_are_found_after_reopen(backend: Backend) -> None:
    """Every committed session, with its token and key, is there after a reopen."""
    store = backend.open()
    store.commit([Granted(session(1)), Granted(session(2, "BB"))])
    reopened = backend.reopen(store)
    snap = reopened.load()
    assert [(s.id, s.token, s.key, s.holder.user_code) for s in snap.sessions] == [
        (1, "token-1", "k1", "AA"),
        (2, "token-2", "k2", "BB"),
    ]
    assert snap.next_id == 3


def test_ended_sessions_are_gone_and_journaled(backend: Backend) -> None:
    """An ended session is removed and its journal entry written in the same commit."""
    store = backend.open()
    store.commit([Granted(session(1))])
    store.commit([Ended(Ending(session(1), EndKind.EVICTED, "lunch", "admin", WHEN))])
    assert store.load().sessions == []
    kinds = [(e["seq"], e["kind"], e.get("reason")) for e in store.journal_entries()]
    assert kinds == [(1, "granted", None), (2, "evicted", "lunch")]


def test_endings_are_kept_across_a_reopen(backend: Backend) -> None:
    """An ending committed with its change is found again, reason and actor, after a reopen."""
    store = backend.open()
    store.commit([Granted(session(1))])
    ending = Ending(session(1), EndKind.EVICTED, "lunch", "local-admin-socket", WHEN, 0, "al")
    store.commit([Ended(ending)])
    reopened = backend.reopen(store)
    [kept] = reopened.load().endings
    assert (kept.session.id, kept.kind, kept.reason, kept.by, kept.claimed, kept.at) == (
        1,
        EndKind.EVICTED,
        "lunch",
        "local-admin-socket",
        "al",
        WHEN,
    )
    assert (kept.session.token, kept.session.key) == ("token-1", "")


def test_kept_endings_are_bounded_by_count_and_age(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond ENDINGS_KEPT, or older than ENDINGS_MAX_AGE before the newest, endings go."""
    monkeypatch.setattr(plan, "ENDINGS_KEPT", 3)
    store = backend.open()
    for sid in range(1, 6):
        store.commit([Granted(session(sid))])
        store.commit([Ended(Ending(session(sid), EndKind.EVICTED, "lunch", "admin", WHEN))])
    assert [e.session.id for e in store.load().endings] == [3, 4, 5]
    later = WHEN + ENDINGS_MAX_AGE + timedelta(seconds=1)
    store.commit([Granted(session(6))])
    store.commit([Ended(Ending(session(6), EndKind.EXPIRED, "silent", "seatd", later))])
    assert [e.session.id for e in backend.reopen(store).load().endings] == [6]


def test_releases_are_not_kept_as_endings(backend: Backend) -> None:
    """A release needs no reason told later: it costs no ending record."""
    store = backend.open()
    store.commit([Granted(session(1))])
    store.commit([Ended(Ending(session(1), EndKind.RELEASED, "released", "AA", WHEN))])
    assert store.load().endings == []


def test_second_store_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    """Two daemons never share a seat table: the second open names the first's pid."""
    store = LmdbStore(StoreConfig(tmp_path))
    with pytest.raises(StateError, match="another seatd"):
        LmdbStore(StoreConfig(tmp_path))
    store.close()


def test_schema_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    """A seat table of another schema version is refused with both versions named."""
    LmdbStore(StoreConfig(tmp_path)).close()
    env = lmdb.open(str(tmp_path / "seatd.lmdb"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"meta")) as txn:
        txn.put(b"schema_version", b"99")
    env.close()
    with pytest.raises(StateError, match=rf"version 99.*version {SCHEMA_VERSION}"):
        LmdbStore(StoreConfig(tmp_path))


def test_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    """A state directory that cannot be created is named in the error."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="cannot use state directory"):
        LmdbStore(StoreConfig(blocker / "state"))


def test_full_store_fails_the_batch_and_keeps_what_was_there(tmp_path: Path) -> None:
    """When the map is full, the batch fails as StorageFailed and the stored state is intact."""
    store = LmdbStore(StoreConfig(tmp_path, map_size=1 << 20))
    store.commit([Granted(session(1))])
    big = [Granted(session(i)) for i in range(2, 6000)]
    with pytest.raises(StorageFailed, match="map size"):
        store.commit(big)
    assert [s.id for s in store.load().sessions] == [1]
    assert len(store.journal_entries()) == 1
    store.commit([Granted(session(2))])
    from seatd import journal

    assert journal.first_broken(store.journal_links()) is None
    store.close()


def prune_six(store: Store) -> None:
    """Six grants, then the first four entries pruned."""
    for i in range(1, 7):
        store.commit([Granted(session(i))])
    store.commit([JournalPruned(up_to_seq=4, at=WHEN)])


def test_pruning_keeps_verification_covering_what_remains(backend: Backend) -> None:
    """After pruning the oldest entries the rest still verifies from the checkpoint."""
    store = backend.open()
    prune_six(store)
    assert store.verify_journal() == (3, None, 7)
    assert backend.reopen(store).verify_journal() == (3, None, 7)
    pruned = backend.opened[-1].journal_entries()[-1]
    assert (pruned["kind"], pruned["pruned"], pruned["pruned_up_to_seq"]) == (
        "journal_pruned",
        4,
        4,
    )


def test_an_edit_after_pruning_is_caught(tmp_path: Path) -> None:
    """An edit to an entry that pruning left is still caught from the checkpoint."""
    store = LmdbStore(StoreConfig(tmp_path))
    prune_six(store)
    store.close()
    env = lmdb.open(str(tmp_path / "seatd.lmdb"), max_dbs=8)
    with env.begin(write=True, db=env.open_db(b"journal")) as txn:
        key = (5).to_bytes(8, "big")
        txn.put(key, bytes(txn.get(key)).replace(b'"AA"', b'"ZZ"'))
    env.close()
    store = LmdbStore(StoreConfig(tmp_path))
    assert store.verify_journal()[1] == 5
    store.close()
