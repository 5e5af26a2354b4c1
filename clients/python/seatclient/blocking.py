"""The blocking API: `SeatClient.acquire()` returns a `Seat` kept alive by a thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

import grpc

from seatclient import wire
from seatclient.clock import Clock, SystemClock
from seatclient.errors import DaemonUnavailable, Evicted, LeaseLost, detail_of, from_rpc_error
from seatclient.events import Draining, LicenceChanged, SeatEvent, SeatState, StateChanged
from seatclient.events import Evicted as EvictedEvent
from seatclient.lease import TERMINAL, Backoff, Lease
from seatclient.v1 import seat_pb2, seat_pb2_grpc, types_pb2

log = logging.getLogger("seatclient")

Listener = Callable[[SeatEvent], None]


class SeatClient:
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
        self.target = target
        self.client_version = client_version
        self.hostname = hostname
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff or Backoff()
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=wire.CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=wire.CHANNEL_OPTIONS)
        self.stub = seat_pb2_grpc.SeatServiceStub(self._channel)

    def acquire(
        self,
        *,
        user_code: str,
        user_name: str = "",
        evict_session: int | None = None,
        reason: str = "",
        wait: float | None = None,
        on_event: Listener | None = None,
    ) -> Seat:
        """Take a seat. Raises `SeatsExhausted` at capacity (unless `wait` seconds pass in the
        queue first), `DaemonUnavailable` when the daemon cannot be reached within the timeout.
        """
        request = wire.acquire_request(
            user_code=user_code,
            user_name=user_name,
            hostname=self.hostname,
            client_version=self.client_version,
            evict_session=evict_session,
            reason=reason,
            wait=wait,
        )
        deadline = self.clock.monotonic() + self.timeout + (wait or 0.0)
        attempt = 0
        while True:
            sent_at = self.clock.monotonic()
            try:
                response = self.stub.Acquire(request, timeout=max(0.1, deadline - sent_at))
            except grpc.RpcError as exc:
                error = from_rpc_error(exc, self.target)
                delay = self.backoff.delay(attempt)
                if isinstance(error, DaemonUnavailable) and sent_at + delay < deadline:
                    attempt += 1
                    threading.Event().wait(delay)
                    continue
                raise error from None
            return Seat(self, wire.granted(response), sent_at, on_event)

    def licence(self) -> seat_pb2.GetLicenceResponse:
        try:
            return self.stub.GetLicence(seat_pb2.GetLicenceRequest(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, self.target) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SeatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Seat:
    """A held seat. Renews itself in a background thread and reattaches after network loss
    or a daemon restart; releases on `release()` or when leaving a `with` block."""

    def __init__(
        self, client: SeatClient, grant: wire.Granted, sent_at: float, listener: Listener | None
    ) -> None:
        self.client = client
        self.session_id = grant.session_id
        self.token = grant.token
        self.terms = grant.terms
        self.licence: types_pb2.LicenceSummary = grant.licence
        self._lease = Lease(grant.terms, sent_at)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = [listener] if listener else []
        self._stop = threading.Event()
        self._ended = threading.Event()
        self._call: Any = None
        self._drain_after: float | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"seat-{self.session_id}", daemon=True
        )
        self._thread.start()

    @property
    def state(self) -> SeatState:
        return self._lease.state

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
        if self.state not in TERMINAL:
            try:
                self.client.stub.Release(
                    seat_pb2.ReleaseRequest(session_id=self.session_id, lease_token=self.token),
                    timeout=timeout,
                )
            except grpc.RpcError as exc:
                log.warning(
                    "seat %s: release failed (%s); the daemon frees it within %.0f s",
                    self.session_id,
                    exc.code(),
                    self.terms.reattach_grace,
                )
        if self._call is not None:
            self._call.cancel()
        self._thread.join(timeout)
        with self._lock:
            change = self._lease.end(SeatState.RELEASED)
        self._emit(change)
        self._ended.set()

    def __enter__(self) -> Seat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- the keepalive thread ----------------------------------------------------------------

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set() and self.state not in TERMINAL:
            attached = threading.Event()
            try:
                self._stream_once(attached)
            except grpc.RpcError as exc:
                if not self._stop.is_set():
                    self._on_refused(exc)
            except Exception:
                log.exception("seat %s: keepalive failed", self.session_id)
            if self._stop.is_set() or self.state in TERMINAL:
                break
            with self._lock:
                change = self._lease.broken(self.client.clock.monotonic())
            self._emit(change)
            attempt = 0 if attached.is_set() else attempt + 1
            if self._drain_after is not None:
                delay, self._drain_after = (
                    self._drain_after * (0.5 + self.client.backoff.rng.random()),
                    None,
                )
            else:
                delay = self.client.backoff.delay(attempt)
            self._stop.wait(delay)
        self._ended.set()

    def _stream_once(self, attached: threading.Event) -> None:
        done = threading.Event()
        attach_sent = self.client.clock.monotonic()
        call = self.client.stub.Keepalive(self._requests(done))
        self._call = call
        try:
            for response in call:
                self._on_response(response, attach_sent, attached)
        finally:
            done.set()

    def _requests(self, done: threading.Event) -> Iterator[seat_pb2.KeepaliveRequest]:
        yield wire.attach_request(self.session_id, self.token)
        while not done.wait(self.terms.keepalive_interval):
            if self._stop.is_set():
                return
            now = self.client.clock.monotonic()
            with self._lock:
                change = self._lease.check(now)
                seq = self._lease.ping_sent(now)
            self._emit(change)
            yield wire.ping_request(seq)

    def _on_response(
        self, response: seat_pb2.KeepaliveResponse, attach_sent: float, attached: threading.Event
    ) -> None:
        kind = response.WhichOneof("event")
        change: StateChanged | None = None
        with self._lock:
            if kind == "attached":
                attached.set()
                change = self._lease.attached(attach_sent)
            elif kind == "pong":
                change = self._lease.acknowledged(response.pong.seq)
        self._emit(change)
        event = wire.pushed_event(response)
        if isinstance(event, EvictedEvent):
            self._emit(event)
            self._end(SeatState.EVICTED)
        elif isinstance(event, Draining):
            self._drain_after = event.reattach_after
            self._emit(event)
        elif isinstance(event, LicenceChanged):
            self.licence = event.licence
            self._emit(event)

    def _on_refused(self, exc: grpc.RpcError) -> None:
        error = from_rpc_error(exc, self.client.target)
        if isinstance(error, Evicted):
            ended = detail_of(exc).ended
            self._emit(
                EvictedEvent(
                    self.session_id, ended.reason, ended.by, ended.at.ToDatetime(tzinfo=UTC)
                )
            )
            self._end(SeatState.EVICTED)
        elif isinstance(error, LeaseLost):
            log.warning("seat %s: %s", self.session_id, error)
            self._end(SeatState.LOST)

    def _end(self, state: SeatState) -> None:
        with self._lock:
            change = self._lease.end(state)
        self._emit(change)
        self._ended.set()

    def _emit(self, event: SeatEvent | None) -> None:
        if event is None:
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("seat %s: event listener failed", self.session_id)
