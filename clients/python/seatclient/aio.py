"""The asyncio API, the same shape as the blocking one: `await client.acquire()` returns an
`AsyncSeat` kept alive by a task; `async with` releases it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar, cast

import grpc

from seatclient import wire
from seatclient.acquiring import AcquirePlan, Call
from seatclient.clock import Clock
from seatclient.core import IdleSource, SeatCore
from seatclient.errors import SeatError, from_rpc_error
from seatclient.events import SeatEvent, SeatState
from seatclient.lease import Backoff
from seatclient.settings import (
    ClientSettings,
    Dispatch,
    Listener,
    QueueListener,
    UnreachableListener,
)
from seatclient.v1 import seat_pb2, seat_pb2_grpc, types_pb2

log = logging.getLogger("seatclient")


class AsyncSeatClient(ClientSettings):
    """A connection to one seat daemon, for asyncio applications.

    Create it in a coroutine running on the event loop that uses it (grpc.aio binds its
    channel to that loop); anything else raises RuntimeError at once. Callbacks run on that
    loop, or through `dispatch` when given. The other arguments are `SeatClient`'s.
    """

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        client_version: str = "",
        hostname: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
        dispatch: Dispatch | None = None,
    ) -> None:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "create AsyncSeatClient in a coroutine running on the event loop that will use "
                "it (grpc.aio binds the channel to that loop); from threads, use SeatClient"
            ) from None
        super().__init__(
            target,
            client_version=client_version,
            hostname=hostname,
            timeout=timeout,
            clock=clock,
            backoff=backoff,
            dispatch=dispatch,
        )
        self._credentials = credentials
        # One channel per target, opened when first called.
        self._links: dict[str, wire.Link] = {}
        self._seats: weakref.WeakSet[AsyncSeat] = weakref.WeakSet()

    def _same_loop(self) -> None:
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError(
                "this AsyncSeatClient was created on another event loop: create one client "
                "per loop, in a coroutine running on it"
            )

    def _link(self) -> wire.Link:
        target = self.targets.current
        if target not in self._links:
            self._links[target] = wire.Link.open(grpc.aio, target, self._credentials)
        return self._links[target]

    @property
    def stub(self) -> seat_pb2_grpc.SeatServiceAsyncStub:
        """The stub of the seat server calls go to now."""
        # The stub of an asyncio channel (the generated stubs' types say so by overload).
        return cast("seat_pb2_grpc.SeatServiceAsyncStub", self._link().stub)

    @property
    def _acquire_stream(self) -> Any:
        return self._link().acquire_stream

    async def acquire(
        self,
        *,
        user_code: str,
        user_name: str = "",
        evict_session: int | None = None,
        reason: str = "",
        wait: float | None = None,
        cancel: asyncio.Event | None = None,
        on_event: Listener | None = None,
        on_queued: QueueListener | None = None,
        on_unreachable: UnreachableListener | None = None,
        idle_seconds: IdleSource | None = None,
    ) -> AsyncSeat:
        """Take a seat; see `SeatClient.acquire` for the arguments and errors. Setting
        `cancel` raises `AcquireCancelled`; cancelling the task works as well (CancelledError).
        """
        self._same_loop()
        plan = AcquirePlan.start(self, user_code, user_name, evict_session, reason, wait)
        while True:
            if cancel is not None and cancel.is_set():
                raise plan.cancelled()
            call = plan.next_call(self.clock.monotonic())
            sent_at = self.clock.monotonic()
            try:
                response = await _unless(cancel, self._call(call, plan, on_queued), plan)
            except grpc.RpcError as exc:
                retry = plan.failed(exc, self.clock.monotonic())
                if retry.unreachable is not None and on_unreachable is not None:
                    self.deliver(on_unreachable, retry.unreachable)
                await _unless(cancel, asyncio.sleep(retry.delay), plan)
                continue
            core = SeatCore(
                wire.granted(response), sent_at, self.backoff, self.targets, idle_seconds
            )
            seat = AsyncSeat(self, core, on_event)
            self._seats.add(seat)
            return seat

    async def _call(
        self, call: Call, plan: AcquirePlan, on_queued: QueueListener | None
    ) -> seat_pb2.AcquireResponse:
        rpc: Any
        if call.streamed:
            rpc = self.stub.WaitForSeat(call.wait_request, timeout=call.timeout)
        else:
            rpc = self._acquire_stream(call.request, timeout=call.timeout)
        try:
            if not call.streamed and on_queued is not None:
                # Acquire says the position it joined at in its headers.
                position = plan.moved(wire.queue_position(await rpc.initial_metadata()))
                if position:
                    self.deliver(on_queued, position)
            async for message in rpc:
                position, granted = plan.update(message)
                if position and on_queued is not None:
                    self.deliver(on_queued, position)
                if granted is not None:
                    return granted
        finally:
            rpc.cancel()
        raise wire.NoGrant()

    async def licence(self) -> seat_pb2.GetLicenceResponse:
        self._same_loop()
        try:
            response: seat_pb2.GetLicenceResponse = await self.stub.GetLicence(
                seat_pb2.GetLicenceRequest(), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target) from None
        return response

    async def close(self) -> None:
        """Release every seat still held through this client, then close the channel."""
        self._same_loop()
        for seat in list(self._seats):
            await seat.release()
        for link in self._links.values():
            await link.channel.close()

    async def __aenter__(self) -> AsyncSeatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


T = TypeVar("T")


async def _unless(
    cancel: asyncio.Event | None, work: Coroutine[Any, Any, T], plan: AcquirePlan
) -> T:
    """`await work`, or cancel it and raise AcquireCancelled as soon as `cancel` is set."""
    if cancel is None:
        return await work
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        raise plan.cancelled()
    return task.result()


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

    @property
    def ending(self) -> SeatError | None:
        """Why the daemon ended the seat; see `Seat.ending`."""
        return self._core.ending

    def touch(self) -> None:
        """The user is active now: see `Seat.touch`."""
        self._core.touch(self.client.clock.monotonic())

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

    async def release(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 (same shape as Seat.release)
        """Give the seat back; True when the daemon answered that this call freed it. See
        `Seat.release`."""
        if self._stop.is_set():
            return False
        self._stop.set()
        released = False
        if not self._core.ended:
            try:
                answer = await self.client.stub.Release(
                    self._core.release_request(), timeout=timeout
                )
                released = bool(answer.released)
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
        return released

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
                await call.write(self._core.attach(attach_sent))
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
                now = self.client.clock.monotonic()
                stale = self._core.stale(now)
                request, events = self._core.ping(now)
                self._emit(events)
                if stale:
                    call.cancel()
                    return
                await call.write(request)

    def _emit(self, events: list[SeatEvent]) -> None:
        for event in events:
            for queue in self._subscribers:
                queue.put_nowait(event)
            for listener in list(self._listeners):
                self.client.deliver(listener, event)
        if self._core.ended:
            self._finish()

    def _finish(self) -> None:
        if not self._ended.is_set():
            self._ended.set()
            for queue in self._subscribers:
                queue.put_nowait(None)
