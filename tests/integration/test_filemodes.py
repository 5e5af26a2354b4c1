"""The state is created private on purpose: directories 0700, files 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seatd import store as store_mod
from seatd.store import LmdbStore, StoreConfig


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask, so only the modes seatd sets on purpose remain."""
    before = os.umask(0)
    yield
    os.umask(before)


def modes(root: Path) -> dict[str, str]:
    found = {".": stat.filemode(root.stat().st_mode)}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = stat.filemode(path.stat().st_mode)
    return found


@pytest.mark.usefixtures("open_umask")
def test_a_fresh_state_is_private_and_enterable(tmp_path: Path) -> None:
    """The state directory and LMDB's environment directory are 0700, every file 0600."""
    state = tmp_path / "var" / "state"
    LmdbStore(StoreConfig(state)).close()
    assert modes(tmp_path / "var") == {
        ".": "drwx------",
        "state": "drwx------",
        "state/seatd.lmdb": "drwx------",
        "state/seatd.lmdb/data.mdb": "-rw-------",
        "state/seatd.lmdb/lock.mdb": "-rw-------",
        "state/seatd.lock": "-rw-------",
    }


@pytest.mark.usefixtures("open_umask")
def test_a_restored_state_is_private(tmp_path: Path) -> None:
    """A restore writes the seat table 0700/0600 even from a world-readable backup."""
    source = LmdbStore(StoreConfig(tmp_path / "source"))
    (tmp_path / "copy").mkdir()
    backup = source.backup(tmp_path / "copy")
    source.close()
    backup.chmod(0o644)
    LmdbStore(StoreConfig(tmp_path / "state")).close()
    store_mod.restore(backup, tmp_path / "state", datetime(2026, 1, 5, tzinfo=UTC), "admin")
    restored = modes(tmp_path / "state" / "seatd.lmdb")
    assert restored == {".": "drwx------", "data.mdb": "-rw-------"}
