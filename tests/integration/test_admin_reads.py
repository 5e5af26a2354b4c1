"""Long admin reads run off the event loop: workstations never wait on an admin."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from seatclient.v1 import admin_pb2, admin_pb2_grpc, seat_pb2

from seatd import journal
from tests.integration.conftest import Running, until

# How long the gated read waits for the loop before giving up: only reached on failure.
GATE_TIMEOUT = 5.0

Call = Callable[[admin_pb2_grpc.AdminServiceStub], Awaitable[Any]]

READS: dict[str, tuple[str, Call]] = {
    "VerifyJournal": (
        "verify_journal",
        lambda a: a.VerifyJournal(admin_pb2.VerifyJournalRequest()),
    ),
    "ReadJournal": (
        "read_journal",
        lambda a: a.ReadJournal(admin_pb2.ReadJournalRequest(limit=10)),
    ),
    "LicenceHistory": (
        "licence_history",
        lambda a: a.LicenceHistory(admin_pb2.LicenceHistoryRequest()),
    ),
    "ListTokens": ("tokens", lambda a: a.ListTokens(admin_pb2.ListTokensRequest())),
}


@pytest.mark.parametrize("rpc", sorted(READS))
async def test_long_admin_read_leaves_the_loop_free(
    running: Running, monkeypatch: pytest.MonkeyPatch, rpc: str
) -> None:
    """While a long store read runs for an admin RPC, other coroutines on the loop still run."""
    method, call = READS[rpc]
    store = running.service.store
    real = getattr(store, method)
    started, loop_ran = threading.Event(), threading.Event()
    answered: list[bool] = []

    def slow_read(*args: Any) -> Any:
        started.set()
        # Stands in for a long scan: it ends when the loop shows it is still turning.
        answered.append(loop_ran.wait(GATE_TIMEOUT))
        return real(*args)

    monkeypatch.setattr(store, method, slow_read)
    pending = asyncio.ensure_future(call(running.admin))
    await until(started.is_set, steps=int(GATE_TIMEOUT * 100))
    loop_ran.set()
    await pending
    assert answered == [True]


async def test_journal_verify_hashes_no_entry_in_the_daemons_process(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VerifyJournal checks the hash chain in a child process: a thread hashing in the daemon
    holds the GIL that the event loop and the commit thread need."""
    hashed_here: list[int] = []
    real = journal.first_unproven

    def spy(*args: Any) -> Any:
        hashed_here.append(1)
        return real(*args)

    monkeypatch.setattr(journal, "first_unproven", spy)
    await running.seat.Acquire(seat_pb2.AcquireRequest(user_code="A", idempotency_key="a"))
    verified = await running.admin.VerifyJournal(admin_pb2.VerifyJournalRequest())
    assert verified.intact and verified.entries >= 1 and verified.last_seq >= 1
    assert hashed_here == []
