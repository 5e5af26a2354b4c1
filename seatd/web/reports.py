"""Reports built from several admin actions: the journal read whole, daily usage."""

from __future__ import annotations

import json
from datetime import UTC

from seatclient.v1 import admin_pb2

from seatd import usage
from seatd.actions import AdminActions
from seatd.model import Actor

# Entries per page of a whole read: bounded, however long the journal.
PAGE = 1000


async def all_entries(
    actions: AdminActions, actor: Actor, keep: admin_pb2.JournalFilter
) -> list[admin_pb2.JournalEntry]:
    """Every journal entry `keep` matches, read a page at a time (ReadJournal's role)."""
    entries: list[admin_pb2.JournalEntry] = []
    after = 0
    while True:
        page = await actions.ReadJournal(
            actor, admin_pb2.ReadJournalRequest(after_seq=after, limit=PAGE, filter=keep)
        )
        entries += page.entries
        after = page.next_after_seq
        if not page.more:
            return entries


async def daily_usage(
    actions: AdminActions, actor: Actor, days: int
) -> tuple[list[usage.Day], int | None]:
    """Usage per day for the last `days` days (the server's zone), and the seat cap now."""
    listed = await actions.ListSessions(actor, admin_pb2.ListSessionsRequest())
    entries = [
        json.loads(e.json) for e in await all_entries(actions, actor, admin_pb2.JournalFilter())
    ]
    rows = usage.last_days(
        entries,
        days=days,
        now=listed.server_time.ToDatetime(tzinfo=UTC),
        utc_offset=listed.server_utc_offset_seconds,
    )
    return rows, listed.seat_cap if listed.HasField("seat_cap") else None
