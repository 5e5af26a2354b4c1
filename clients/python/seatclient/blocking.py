"""The blocking API: `SeatClient.acquire()` returns a `Seat` kept alive by a thread."""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

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


class SeatClient(ClientSettings):
    """A connection to one seat daemon. Thread-safe; one per process is enough.

    `hostname` is the workstation name the daemon shows (default: this machine's),
    `client_version` the application's version (default `seat-client/VERSION`), `timeout`
    the seconds an acquire without `wait` (and `licence()`) may take in all, retries
    included. `dispatch` runs every callback of this client and its seats (see `acquire`)
    on the application's thread: it is given a no-argument callable to schedule, such as
    Tk's `lambda fn: root.after(0, fn)`. Without it, callbacks run on the library's threads
    (see the README, "Which thread runs what").
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
        self._seats: weakref.WeakSet[Seat] = weakref.WeakSet()

    def _link(self) -> wire.Link:
        target = self.targets.current
        if target not in self._links:
            self._links[target] = wire.Link.open(grpc, target, self._credentials)
        return self._links[target]

    @property
    def stub(self) -> seat_pb2_grpc.SeatServiceStub:
        """The stub of the seat server calls go to now."""
        return self._link().stub

    @property
    def _acquire_stream(self) -> Any:
        return self._link().acquire_stream

    def acquire(
        self,
        *,
        user_code: str,
        user_name: str = "",
        evict_session: int | None = None,
        reason: str = "",
        wait: float | None = None,
        cancel: threading.Event | None = None,
        on_event: Listener | None = None,
        on_queued: QueueListener | None = None,
        on_unreachable: UnreachableListener | None = None,
        idle_seconds: IdleSource | None = None,
    ) -> Seat:
        """Take a seat.

        At capacity this raises `SeatsExhausted`, unless `wait` is given: then the request
        queues for the next free seat (first come, first served) and returns as soon as one
        frees, calling `on_queued(position)` when it joins the queue and each time its
        position changes. `wait` bounds the whole call, reconnects included; while the
        daemon cannot be reached the library retries and calls `on_unreachable(error)`.
        Setting `cancel` (from any thread) ends the call with `AcquireCancelled` and leaves
        the queue. `evict_session` takes that session's seat over when the daemon's policy
        allows it (`TakeoverTargetGone` if it ended meanwhile). Raises `DaemonUnavailable`
        when the daemon cannot be reached in time.
        Raises `PolicyRefused` (naming the rule) when the site's seat policy refuses the
        seat.

        Idle reclaim: report the user's activity with `seat.touch()`, or pass
        `idle_seconds`, a function the library calls before each keepalive for the seconds
        since the user was last active (None: unknown). Each keepalive carries it; a seat
        that reports nothing is never reclaimed for idleness. An `IdleWarning` event tells
        the application its seat will be reclaimed unless the user comes back.
        """
        plan = AcquirePlan.start(self, user_code, user_name, evict_session, reason, wait)
        while True:
            if cancel is not None and cancel.is_set():
                raise plan.cancelled()
            call = plan.next_call(self.clock.monotonic())
            sent_at = self.clock.monotonic()
            try:
                response = self._call(call, plan, cancel, on_queued)
            except grpc.RpcError as exc:
                if cancel is not None and cancel.is_set():
                    raise plan.cancelled() from None
                retry = plan.failed(exc, self.clock.monotonic())
                if retry.unreachable is not None and on_unreachable is not None:
                    self.deliver(on_unreachable, retry.unreachable)
                if (cancel or threading.Event()).wait(retry.delay):
                    raise plan.cancelled() from None
                continue
            core = SeatCore(
                wire.granted(response), sent_at, self.backoff, self.targets, idle_seconds
            )
            seat = Seat(self, core, on_event)
            self._seats.add(seat)
            return seat

    def _call(
        self,
        call: Call,
        plan: AcquirePlan,
        cancel: threading.Event | None,
        on_queued: QueueListener | None,
    ) -> seat_pb2.AcquireResponse:
        if call.streamed:
            rpc = self.stub.WaitForSeat(call.wait_request, timeout=call.timeout)
        else:
            rpc = self._acquire_stream(call.request, timeout=call.timeout)
        with _cancelled_by(cancel, rpc):
            if not call.streamed and on_queued is not None:
                # Acquire says the position it joined at in its headers.
                position = plan.moved(wire.queue_position(rpc.initial_metadata()))
                if position:
                    self.deliver(on_queued, position)
            for message in rpc:
                position, granted = plan.update(message)
                if position and on_queued is not None:
                    self.deliver(on_queued, position)
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
        for link in self._links.values():
            link.channel.close()

    def __enter__(self) -> SeatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def _cancelled_by(cancel: threading.Event | None, rpc: Any) -> Iterator[None]:
    """Cancel `rpc` once `cancel` is set. A threading.Event tells no one when it is set, so
    a watcher looks at it every 50 ms while the call runs."""
    if cancel is None:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if cancel.is_set():
                rpc.cancel()
                return

    watcher = threading.Thread(target=watch, name="seat-acquire-cancel", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


class Seat:
    """A held seat. Renews itself in a background thread and reattaches after network loss
    or a daemon restart; releases on `release()` or when leaving a `with` block.

    `session_id` is the daemon's id for it (what `seatctl sessions` shows), `state` the
    `SeatState` now, `licence` the licence summary in force, `ending` the daemon's word on
    why it ended.
    """

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

    @property
    def ending(self) -> SeatError | None:
        """Why the daemon ended the seat: `Evicted` (reason, by), `LeaseLost` (its `code`,
        SESSION_EXPIRED say, and message) or `Superseded`; None while held or once
        released by the application."""
        return self._core.ending

    def touch(self) -> None:
        """The user is active now (a key, a click): the next keepalive reports no idleness,
        and withdraws an idle warning."""
        with self._lock:
            self._core.touch(self.client.clock.monotonic())

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def wait(self, timeout: float | None = None) -> SeatState:
        """Block until the seat ends (evicted, lost or released) or `timeout` passes."""
        self._ended.wait(timeout)
        return self.state

    def release(self, timeout: float = 5.0) -> bool:
        """Give the seat back; True when the daemon answered that this call freed it (False:
        it had ended already, or the daemon could not be reached: then it frees the seat
        itself within the reattach grace). Safe to call more than once."""
        if self._stop.is_set():
            return False
        self._stop.set()
        released = False
        if not self._core.ended:
            try:
                answer = self.client.stub.Release(self._core.release_request(), timeout=timeout)
                released = bool(answer.released)
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
        return released

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
            yield self._core.attach(self.client.clock.monotonic())
        while not done.wait(self._core.terms.keepalive_interval):
            if self._stop.is_set():
                return
            with self._lock:
                now = self.client.clock.monotonic()
                stale = self._core.stale(now)
                request, events = self._core.ping(now)
            self._emit(events)
            if stale:
                self._call.cancel()
                return
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
                self.client.deliver(listener, event)
