"""The library's GUI contract, without a GUI: every callback goes through `dispatch`.

A fake dispatcher stands for Tk's `root.after(0, fn)`: it only queues; the test's thread
runs the queue, as a Tk main loop would. Nothing may run before that, nor elsewhere.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

import pytest
from seatclient import (
    AcquireCancelled,
    EvictedEvent,
    SeatClient,
    SeatState,
    StateChanged,
)

from tests.integration.conftest import Running, until


class Heard:
    """What each callback was given, and on which thread it ran."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.threads: set[int] = set()

    def __call__(self, name: str) -> Callable[[Any], None]:
        def record(value: Any) -> None:
            self.threads.add(threading.get_ident())
            self.calls.append((name, value))

        return record

    def of(self, name: str) -> list[Any]:
        return [value for who, value in self.calls if who == name]


def run_all(dispatched: queue.Queue[Callable[[], None]]) -> None:
    while not dispatched.empty():
        dispatched.get_nowait()()


async def test_every_callback_runs_through_the_dispatcher_in_order(running: Running) -> None:
    """Positions, eviction, state changes and RELEASED reach the application only through
    `dispatch`, on the thread that runs it, each seat's in the order they happened."""
    dispatched: queue.Queue[Callable[[], None]] = queue.Queue()
    heard = Heard()
    client = SeatClient(f"127.0.0.1:{running.port}", timeout=5, dispatch=dispatched.put)
    try:
        first = await asyncio.to_thread(client.acquire, user_code="A1", on_event=heard("A1"))
        second = await asyncio.to_thread(client.acquire, user_code="A2", on_event=heard("A2"))
        waiting = asyncio.create_task(
            asyncio.to_thread(
                client.acquire,
                user_code="B",
                wait=30,
                on_event=heard("B"),
                on_queued=heard("B queued"),
            )
        )
        await until(lambda: running.service.waiting == 1)
        await asyncio.to_thread(first.release)
        waiter = await waiting
        await running.service.evict(waiter.session_id, reason="audit", by="admin")
        await until(lambda: waiter.state is SeatState.EVICTED)
        await asyncio.to_thread(second.release)
        assert heard.calls == []  # nothing ran outside the dispatcher
        run_all(dispatched)
    finally:
        await asyncio.to_thread(client.close)
    assert heard.threads == {threading.get_ident()}
    assert heard.of("B queued") == [1]
    evicted, ended = heard.of("B")
    assert isinstance(evicted, EvictedEvent) and evicted.reason == "audit"
    assert ended == StateChanged(SeatState.ACTIVE, SeatState.EVICTED)
    assert heard.of("A2") == [StateChanged(SeatState.ACTIVE, SeatState.RELEASED)]


async def test_a_failing_listener_is_logged_and_the_next_one_still_runs(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener that raises is logged by the library; the other listeners still hear it."""
    heard = Heard()
    client = SeatClient(f"127.0.0.1:{running.port}", timeout=5)

    def broken(event: Any) -> None:
        raise ValueError("the application's bug")

    try:
        seat = await asyncio.to_thread(client.acquire, user_code="A1", on_event=broken)
        seat.add_listener(heard("after"))
        await asyncio.to_thread(seat.release)
    finally:
        await asyncio.to_thread(client.close)
    assert heard.of("after") == [StateChanged(SeatState.ACTIVE, SeatState.RELEASED)]
    assert "the application's bug" in caplog.text


async def test_setting_cancel_ends_a_queued_acquire_and_leaves_the_queue(
    running: Running,
) -> None:
    """cancel.set() from another thread raises AcquireCancelled and the queue is empty."""
    client = SeatClient(f"127.0.0.1:{running.port}", timeout=5)
    cancel = threading.Event()
    try:
        for user in ("A1", "A2"):
            await asyncio.to_thread(client.acquire, user_code=user)
        waiting = asyncio.create_task(
            asyncio.to_thread(client.acquire, user_code="B", wait=30, cancel=cancel)
        )
        await until(lambda: running.service.waiting == 1)
        cancel.set()
        with pytest.raises(AcquireCancelled):
            await asyncio.wait_for(waiting, 5)
        await until(lambda: running.service.waiting == 0)
    finally:
        await asyncio.to_thread(client.close)
