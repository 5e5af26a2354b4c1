"""The vendor's files are kept like the daemon's state: directories 0700, files 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from seatd.cloud.ledger import Ledger
from seatd.cloud.pricing import PriceTable
from seatd.licence.signing import generate, load_signing_key, write_keys
from tests.fakes import FakeClock
from tests.integration.test_filemodes import modes, open_umask  # noqa: F401  (a fixture)
from tests.licences import VENDOR


@pytest.mark.usefixtures("open_umask")
def test_a_fresh_cloud_ledger_is_private_and_enterable(tmp_path: Path) -> None:
    """The vendor's cloud ledger is kept like the daemon's state: directories 0700, files 0600."""
    Ledger(tmp_path / "cloud", VENDOR, PriceTable.load(), FakeClock()).close()
    assert modes(tmp_path / "cloud") == {
        ".": "drwx------",
        "cloud.lmdb": "drwx------",
        "cloud.lmdb/data.mdb": "-rw-------",
        "cloud.lmdb/lock.mdb": "-rw-------",
    }


@pytest.mark.usefixtures("open_umask")
def test_a_vendor_signing_key_is_written_private_over_an_older_file(tmp_path: Path) -> None:
    """`seatd-vendor keygen` leaves the private key 0600 even where a readable file was."""
    private, public = tmp_path / "vendor.key", tmp_path / "vendor.pub"
    private.write_text("old")
    private.chmod(0o644)
    write_keys(generate(), private, public)
    assert stat.filemode(private.stat().st_mode) == "-rw-------"
    assert load_signing_key(private).kid
