"""The blocking API: `SeatClient.acquire()` returns a `Seat` kept alive by a thread."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterator
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


class SeatClient(ClientSettings):
    """A connection to one seat daemon. Thread-safe; one per process is enough."""

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
        self._channel = wire.channel(grpc, target, credentials)
        self.stub = seat_pb2_grpc.SeatServiceStub(self._channel)
        self._acquire_stream = wire.acquire_as_stream(self._channel)
        self._seats: weakref.WeakSet[Seat] = weakref.WeakSet()

    def acquire(
        self,
        *,
        user_code: str,
        user_name: str = "",
        evict_session: int | None = None,
        reason: str = "",
        wait: float | None = None,
        on_event: Listener | None = None,
        on_queued: QueueListener | None = None,
    ) -> Seat:
        """Take a seat.

        At capacity this raises `SeatsExhausted`, unless `wait` is given: then the request
        queues for the next free seat (first come, first served) and returns as soon as one
        frees, calling `on_queued(position)` once it joins the queue. `evict_session` takes
        that session's seat over when the daemon's policy allows it. Raises
        `DaemonUnavailable` when the daemon cannot be reached within the timeout.
        """
        request, deadline = self._acquire_request(user_code, user_name, evict_session, reason, wait)
        attempt = 0
        while True:
            sent_at = self.clock.monotonic()
            timeout = max(0.1, deadline - sent_at)
            try:
                if wait and self._streamed_waits:
                    response = self._wait_for_seat(request, timeout, on_queued)
                else:
                    call = self._acquire_stream(request, timeout=timeout)
                    if on_queued is not None:
                        position = wire.queue_position(call.initial_metadata())
                        if position:
                            on_queued(position)
                    response = next(call)
            except grpc.RpcError as exc:
                if self._older_daemon(exc):
                    continue
                error = from_rpc_error(exc, self.target)
                delay = self._retry_after(error, attempt, deadline)
                if delay is None:
                    raise error from None
                attempt += 1
                threading.Event().wait(delay)
                continue
            core = SeatCore(wire.granted(response), sent_at, self.backoff, self.target)
            seat = Seat(self, core, on_event)
            self._seats.add(seat)
            return seat

    def _wait_for_seat(
        self, request: seat_pb2.AcquireRequest, limit: float, on_queued: QueueListener | None
    ) -> seat_pb2.AcquireResponse:
        for update in self.stub.WaitForSeat(wire.wait_request(request), timeout=limit):
            position, granted = wire.wait_update(update)
            if position and on_queued is not None:
                on_queued(position)
            if granted is not None:
                return granted
        raise wire.NoGrant()

    def licence(self) -> seat_pb2.GetLicenceResponse:
        try:
            response: seat_pb2.GetLicenceResponse = self.stub.GetLicence(
                seat_pb2.GetLicenceRequest(), timeout=self.timeout
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target) from None
        return response

    def close(self) -> None:
        """Release every seat still held through this client, then close the channel."""
        for seat in list(self._seats):
            seat.release()
        self._channel.close()

    def __enter__(self) -> SeatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Seat:
    """A held seat. Renews itself in a background thread and reattaches after network loss
    or a daemon restart; releases on `release()` or when leaving a `with` block."""

    def __init__(self, client: SeatClient, core: SeatCore, listener: Listener | None) -> None:
        self.client = client
        self._core = core
        self.session_id = core.session_id
        self._lock = threading.Lock()
        self._listeners: list[Listener] = [listener] if listener else []
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._call: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"seat-{self.session_id}", daemon=True
        )
        self._thread.start()

    @property
    def state(self) -> SeatState:
        return self._core.state

    @property
    def licence(self) -> types_pb2.LicenceSummary:
        return self._core.licence

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def wait(self, timeout: float | None = None) -> SeatState:
        """Block until the seat ends (evicted, lost or released) or `timeout` passes."""
        self._ended.wait(timeout)
        return self.state

    def release(self, timeout: float = 5.0) -> None:
        """Give the seat back. Safe to call more than once."""
        if self._stop.is_set():
            return
        self._stop.set()
        if not self._core.ended:
            try:
                self.client.stub.Release(self._core.release_request(), timeout=timeout)
            except grpc.RpcError as exc:
                log.warning(
                    "seat %s: release failed (%s); the daemon frees it within %.0f s",
                    self.session_id,
                    exc.code(),
                    self._core.terms.reattach_grace,
                )
        if self._call is not None:
            self._call.cancel()
        self._thread.join(timeout)
        self._publish(self._core.on_released)
        self._ended.set()

    def __enter__(self) -> Seat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- the keepalive thread ----------------------------------------------------------------

    def _run(self) -> None:
        clock = self.client.clock
        while not self._stop.is_set() and not self._core.ended:
            done = threading.Event()
            try:
                attach_sent = clock.monotonic()
                self._call = self.client.stub.Keepalive(self._requests(done))
                for response in self._call:
                    self._publish(self._core.on_response, response, attach_sent)
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    self._publish(self._core.on_refused, exc)
            except Exception:
                log.exception("seat %s: keepalive failed", self.session_id)
            finally:
                done.set()
            if self._stop.is_set() or self._core.ended:
                break
            with self._lock:
                events, delay = self._core.on_stream_end(clock.monotonic())
            self._emit(events)
            self._stop.wait(delay)
        self._ended.set()

    def _requests(self, done: threading.Event) -> Iterator[seat_pb2.KeepaliveRequest]:
        with self._lock:
            yield self._core.attach()
        while not done.wait(self._core.terms.keepalive_interval):
            if self._stop.is_set():
                return
            with self._lock:
                request, events = self._core.ping(self.client.clock.monotonic())
            self._emit(events)
            yield request

    def _publish(self, step: Callable[..., list[SeatEvent]], *args: Any) -> None:
        with self._lock:
            events = step(*args)
        self._emit(events)
        if self._core.ended:
            self._ended.set()

    def _emit(self, events: list[SeatEvent]) -> None:
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("seat %s: event listener failed", self.session_id)
