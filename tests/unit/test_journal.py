"""The journal's hash chain."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from seatd import journal
from seatd.model import Ended, Ending, EndKind, Granted, Holder, Session

WHEN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def session(sid: int) -> Session:
    return Session(
        sid, Holder("AA", "A A", "PC-1", "10.0.0.1", "15"), f"k{sid}", "t", WHEN, WHEN, 0.0, 35.0
    )


def links(n: int) -> list[journal.Link]:
    out, prev = [], journal.GENESIS
    for seq in range(1, n + 1):
        event = (
            Granted(session(seq))
            if seq % 2
            else Ended(Ending(session(seq - 1), EndKind.EVICTED, "lunch", "admin", WHEN))
        )
        raw, prev = journal.chain(journal.fields_of(event), seq, prev)
        out.append(journal.Link(seq, raw))
    return out


def test_an_intact_chain_verifies() -> None:
    """A chain written by `chain` verifies from the first entry to the last."""
    assert journal.first_broken(links(6)) is None


def test_a_sealed_entry_reads_back_as_its_fields_and_the_hash_of_their_canonical_form() -> None:
    """What `chain` stores decodes to the fields, seq, prev and a hash over their canonical JSON."""
    fields = journal.fields_of(Granted(session(7)))
    assert fields is not None
    raw, digest = journal.chain(fields, 7, "ab" * 32)
    entry = json.loads(raw)
    assert entry == {**fields, "seq": 7, "prev": "ab" * 32, "hash": digest}
    del entry["hash"]
    assert hashlib.sha256(journal.canonical(entry)).hexdigest() == digest


@pytest.mark.parametrize("victim", range(6))
def test_any_single_byte_change_is_detected(victim: int) -> None:
    """Changing any byte of any entry breaks the chain at that entry."""
    chain = links(6)
    raw = chain[victim].raw
    for offset in range(0, len(raw), 7):
        tampered = bytearray(raw)
        tampered[offset] ^= 0x01
        changed = [*chain[:victim], journal.Link(victim + 1, bytes(tampered)), *chain[victim + 1 :]]
        assert journal.first_broken(changed) == victim + 1


def test_a_removed_entry_is_detected() -> None:
    """Dropping an entry from the middle breaks the chain at the next one."""
    chain = links(5)
    del chain[2]
    assert journal.first_broken(chain) == 4


def test_eviction_entry_keeps_reason_and_actor() -> None:
    """An eviction's journal fields hold the reason and who did it."""
    fields = journal.fields_of(Ended(Ending(session(1), EndKind.EVICTED, "lunch", "admin", WHEN)))
    assert (fields["kind"], fields["reason"], fields["actor"], fields["session_id"]) == (
        "evicted",
        "lunch",
        "admin",
        1,
    )


def test_filter_matches_kind_user_session_and_time_range() -> None:
    """Each filter field narrows the entries; empty fields match all."""
    entry = {"kind": "evicted", "user_code": "AA", "session_id": 7, "at": "2026-01-05T09:00:00Z"}
    assert journal.Filter().matches(entry)
    assert journal.Filter(kinds=frozenset({"evicted"}), user_code="AA", session_id=7).matches(entry)
    assert not journal.Filter(kinds=frozenset({"granted"})).matches(entry)
    assert not journal.Filter(user_code="BB").matches(entry)
    assert not journal.Filter(session_id=8).matches(entry)
    assert journal.Filter(since=WHEN, until=WHEN + timedelta(seconds=1)).matches(entry)
    assert not journal.Filter(since=WHEN + timedelta(seconds=1)).matches(entry)
    assert not journal.Filter(until=WHEN).matches(entry)


def test_a_removed_tail_is_caught_by_the_recorded_head() -> None:
    """Entries cut off the end still chain, but the recorded head names the first missing."""
    kept = links(6)[:4]
    head = (6, json.loads(links(6)[-1].raw)["hash"])
    assert journal.first_broken(kept) is None
    assert journal.first_unproven(kept, (0, journal.GENESIS), head) == 5


def test_a_chain_ending_at_its_recorded_head_is_intact() -> None:
    """Every entry verifies and the last one is the head: nothing unproven."""
    chain = links(6)
    head = (6, json.loads(chain[-1].raw)["hash"])
    assert journal.first_unproven(chain, (0, journal.GENESIS), head) is None


def test_an_admin_claim_is_journaled_apart_from_the_actor() -> None:
    """An eviction from the local socket: actor is the socket, the OS user is claimed_user."""
    ending = Ending(
        session(1), EndKind.EVICTED, "lunch", "local-admin-socket", WHEN, claimed="alice"
    )
    fields = journal.fields_of(Ended(ending))
    assert fields is not None
    assert (fields["actor"], fields["claimed_user"]) == ("local-admin-socket", "alice")


def test_a_takeover_journals_its_actor_as_claimed() -> None:
    """A takeover's actor is what the workstation said it is: journaled with by_claimed."""
    ending = Ending(session(1), EndKind.EVICTED, "mine", "BB@PC-2", WHEN, by_claimed=True)
    fields = journal.fields_of(Ended(ending))
    assert fields is not None
    assert (fields["actor"], fields["by_claimed"]) == ("BB@PC-2", True)
