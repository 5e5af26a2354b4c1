"""The library's error and data model as an application reads it."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import grpc
import pytest
from seatclient import AsyncSeatClient, Evicted, EvictedEvent, wire
from seatclient.core import SeatCore
from seatclient.errors import LeaseLost
from seatclient.lease import Backoff, Terms
from seatclient.targets import Targets
from seatclient.v1 import types_pb2

from tests.fakes import FakeRpcError


def test_evicted_error_has_its_code_and_the_human_reason() -> None:
    """Evicted.code is the machine code; .reason is what the evicting person wrote."""
    error = Evicted("session 7 was disconnected", reason="month-end close", by="admin")
    assert (error.code, error.reason, error.by) == ("SESSION_EVICTED", "month-end close", "admin")
    with pytest.deprecated_call():
        assert error.evict_reason == "month-end close"


def test_eviction_event_says_what_it_is() -> None:
    """The eviction event's repr names EvictedEvent, not the error's name."""
    event = EvictedEvent(7, "r", "admin", datetime(2026, 1, 1, tzinfo=UTC))
    assert repr(event).startswith("EvictedEvent(")


def test_seat_ending_keeps_the_daemons_word() -> None:
    """A lease the daemon says expired leaves its code and message on `ending`."""
    grant = wire.Granted(7, "tok", Terms(30, 10, 10), types_pb2.LicenceSummary(), datetime.now(UTC))
    core = SeatCore(grant, 0.0, Backoff(rng=random.Random(1)), Targets("t:1"))
    detail = types_pb2.ErrorDetail(reason="SESSION_EXPIRED", message="session 7 expired")
    core.on_refused(
        FakeRpcError(  # type: ignore[arg-type]
            grpc.StatusCode.NOT_FOUND, "", (("seatd-error-bin", detail.SerializeToString()),)
        )
    )
    assert isinstance(core.ending, LeaseLost)
    assert (core.ending.code, str(core.ending)) == ("SESSION_EXPIRED", "session 7 expired")


def test_async_client_made_outside_an_event_loop_fails_at_once() -> None:
    """Creating an AsyncSeatClient with no running loop is a RuntimeError saying where."""
    with pytest.raises(RuntimeError, match="coroutine running on the event loop"):
        AsyncSeatClient("127.0.0.1:1")


def test_async_client_used_on_another_loop_fails_clearly() -> None:
    """An AsyncSeatClient used from a loop other than its own says so before any call."""

    async def make() -> AsyncSeatClient:
        return AsyncSeatClient("127.0.0.1:1")

    client = asyncio.run(make())
    with pytest.raises(RuntimeError, match="created on another event loop"):
        asyncio.run(client.acquire(user_code="AA"))
