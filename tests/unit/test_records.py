"""Stored records read back without trusting them: a damaged one is named, never a traceback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from seatd import records
from seatd.errors import DamagedRecord
from seatd.model import Holder, Session

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SESSION = Session(7, Holder("AA", "A A", "PC-1", "10.0.0.1", "15"), "k7", "t7", WHEN, WHEN, 0, 0)


def test_a_session_reads_back_as_written() -> None:
    """encode_session and decode_session are inverses for what the store keeps."""
    back = records.decode_session(records.seq_key(7), records.encode_session(SESSION))
    assert (back.id, back.holder, back.key, back.token, back.started_at) == (
        7,
        SESSION.holder,
        "k7",
        "t7",
        WHEN,
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b'{"id": 7, "user_code"', "is not JSON"),
        (b"[7]", "is not a JSON object"),
        (
            records.encode_session(SESSION).replace(b'"user_code":"AA",', b""),
            "no field 'user_code'",
        ),
        (records.encode_session(SESSION).replace(b'"id":7', b'"id":"7"'), "'id' that is not int"),
        (
            records.encode_session(SESSION).replace(b"2026-01-05T09:00:00", b"yesterday"),
            "'started_at' that is not a date-time",
        ),
        (records.encode_session(SESSION).replace(b'"id":7', b'"id":8'), "holds session 8"),
    ],
)
def test_a_session_that_does_not_decode_names_its_record(raw: bytes, problem: str) -> None:
    """Bad JSON, a missing field, a wrong type or a wrong id: one error naming db and key."""
    with pytest.raises(DamagedRecord, match=f"record 7 in database 'sessions' .*{problem}"):
        records.decode_session(records.seq_key(7), raw)


def test_a_number_that_is_not_one_names_its_record() -> None:
    """A meta counter holding text is reported as that record, not as a ValueError."""
    with pytest.raises(DamagedRecord, match="record 'next_session_id' in database 'meta' is not"):
        records.decode_number("meta", b"next_session_id", b"12x")


def test_a_journal_entry_under_another_seq_names_its_record() -> None:
    """An entry whose seq is not its key is damaged, named by its key."""
    with pytest.raises(DamagedRecord, match="record 3 in database 'journal' holds seq 4"):
        records.decode_entry(records.seq_key(3), b'{"seq":4,"hash":"ab"}')
