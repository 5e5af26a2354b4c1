"""The asyncio API, the same shape as the blocking one: `await client.acquire()` returns an
`AsyncSeat` kept alive by a task; `async with` releases it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

import grpc

from seatclient import wire
from seatclient.clock import Clock
from seatclient.core import SeatCore
from seatclient.errors import from_rpc_error
from seatclient.events import SeatEvent, SeatState
from seatclient.lease import Backoff
from seatclient.settings import ClientSettings, Listener, QueueListener
from seatclient.v1 import seat_pb2, seat_pb2_grpc, types_pb2

log = logging.getLogger("seatclient")


class AsyncSeatClient(ClientSettings):
    """A connection to one seat daemon, for asyncio applications."""

    def __init__(
        self,
        target: str,
        *,
        client_version: str = "",
        hostname: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(
            target,
            client_version=client_version,
            hostname=hostname,
            timeout=timeout,
            clock=clock,
            backoff=backoff,
        )
        self._channel = wire.channel(grpc.aio, target, credentials)
        self.stub = seat_pb2_grpc.SeatServiceStub(self._channel)
        self._acquire_stream = wire.acquire_as_stream(self._channel)
        self._seats: weakref.WeakSet[AsyncSeat] = weakref.WeakSet()

    async def acquire(
        self,
        *,
        user_code: str,
        user_name: str = "",
        evict_session: int | None = None,
        reason: str = "",
        wait: float | None = None,
        on_event: Listener | None = None,
        on_queued: QueueListener | None = None,
    ) -> AsyncSeat:
        """Take a seat; see `SeatClient.acquire` for the arguments and errors."""
        request, deadline = self._acquire_request(user_code, user_name, evict_session, reason, wait)
        attempt = 0
        while True:
            sent_at = self.clock.monotonic()
            timeout = max(0.1, deadline - sent_at)
            try:
                if wait and self._streamed_waits:
                    response = await self._wait_for_seat(request, timeout, on_queued)
                else:
                    call = self._acquire_stream(request, timeout=timeout)
                    if on_queued is not None:
                        position = wire.queue_position(await call.initial_metadata())
                        if position:
                            on_queued(position)
                    response = await call.read()
            except grpc.RpcError as exc:
                if self._older_daemon(exc):
                    continue
                error = from_rpc_error(exc, self.target)
                delay = self._retry_after(error, attempt, deadline)
                if delay is None:
                    raise error from None
                attempt += 1
                await asyncio.sleep(delay)
                continue
            core = SeatCore(wire.granted(response), sent_at, self.backoff, self.target)
            seat = AsyncSeat(self, core, on_event)
            self._seats.add(seat)
            return seat

    async def _wait_for_seat(
        self, request: seat_pb2.AcquireRequest, limit: float, on_queued: QueueListener | None
    ) -> seat_pb2.AcquireResponse:
        async for update in self.stub.WaitForSeat(wire.wait_request(request), timeout=limit):
            position, granted = wire.wait_update(update)
            if position and on_queued is not None:
                on_queued(position)
            if granted is not None:
                return granted
        raise wire.NoGrant()

    async def licence(self) -> seat_pb2.GetLicenceResponse:
        try:
            response: seat_pb2.GetLicenceResponse = await self.stub.GetLicence(
                seat_pb2.GetLicenceRequest(), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target) from None
        return response

    async def close(self) -> None:
        """Release every seat still held through this client, then close the channel."""
        for seat in list(self._seats):
            await seat.release()
        await self._channel.close()

    async def __aenter__(self) -> AsyncSeatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncSeat:
    """A held seat, renewed by a task; reattaches after network loss or a daemon restart."""

    def __init__(self, client: AsyncSeatClient, core: SeatCore, listener: Listener | None) -> None:
        self.client = client
        self._core = core
        self.session_id = core.session_id
        self._listeners: list[Listener] = [listener] if listener else []
        self._subscribers: list[asyncio.Queue[SeatEvent | None]] = []
        self._stop = asyncio.Event()
        self._ended = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"seat-{self.session_id}")

    @property
    def state(self) -> SeatState:
        return self._core.state

    @property
    def licence(self) -> types_pb2.LicenceSummary:
        return self._core.licence

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def events(self) -> AsyncIterator[SeatEvent]:
        """Every event from now on, until the seat ends."""
        queue: asyncio.Queue[SeatEvent | None] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while not (self._ended.is_set() and queue.empty()):
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.remove(queue)

    async def wait(self, timeout: float | None = None) -> SeatState:  # noqa: ASYNC109 (same shape as Seat.wait)
        """Until the seat ends (evicted, lost or released) or `timeout` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ended.wait(), timeout)
        return self.state

    async def release(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (same shape as Seat.release)
        """Give the seat back. Safe to call more than once."""
        if self._stop.is_set():
            return
        self._stop.set()
        if not self._core.ended:
            try:
                await self.client.stub.Release(self._core.release_request(), timeout=timeout)
            except grpc.RpcError as exc:
                log.warning(
                    "seat %s: release failed (%s); the daemon frees it within %.0f s",
                    self.session_id,
                    exc.code(),
                    self._core.terms.reattach_grace,
                )
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._emit(self._core.on_released())
        self._finish()

    async def __aenter__(self) -> AsyncSeat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()

    # -- the keepalive task ------------------------------------------------------------------

    async def _run(self) -> None:
        clock = self.client.clock
        while not self._stop.is_set() and not self._core.ended:
            call: Any = self.client.stub.Keepalive()
            pinger: asyncio.Task[None] | None = None
            try:
                attach_sent = clock.monotonic()
                await call.write(self._core.attach())
                pinger = asyncio.create_task(self._ping(call))
                async for response in call:
                    self._emit(self._core.on_response(response, attach_sent))
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    self._emit(self._core.on_refused(exc))
            except asyncio.CancelledError:
                call.cancel()
                raise
            except Exception:
                log.exception("seat %s: keepalive failed", self.session_id)
            finally:
                if pinger is not None:
                    pinger.cancel()
            if self._stop.is_set() or self._core.ended:
                break
            events, delay = self._core.on_stream_end(clock.monotonic())
            self._emit(events)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        self._finish()

    async def _ping(self, call: Any) -> None:
        with contextlib.suppress(grpc.RpcError, asyncio.InvalidStateError):
            while True:
                await asyncio.sleep(self._core.terms.keepalive_interval)
                request, events = self._core.ping(self.client.clock.monotonic())
                self._emit(events)
                await call.write(request)

    def _emit(self, events: list[SeatEvent]) -> None:
        for event in events:
            for queue in self._subscribers:
                queue.put_nowait(event)
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("seat %s: event listener failed", self.session_id)
        if self._core.ended:
            self._finish()

    def _finish(self) -> None:
        if not self._ended.is_set():
            self._ended.set()
            for queue in self._subscribers:
                queue.put_nowait(None)
