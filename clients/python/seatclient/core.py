"""What a held seat decides, without I/O (h11's way): the drivers only move messages.

`blocking.Seat` (a thread) and `aio.AsyncSeat` (a task) feed the core what happened on the
keepalive stream and publish the events it returns; the core owns the lease state, the
reattach delay and the meaning of every response and refusal.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import UTC

import grpc

from seatclient import wire
from seatclient.errors import (
    DaemonUnavailable,
    Evicted,
    LeaseLost,
    SeatError,
    Superseded,
    detail_of,
    from_rpc_error,
)
from seatclient.events import (
    Draining,
    EvictedEvent,
    IdleWarning,
    LicenceChanged,
    SeatEvent,
    SeatState,
)
from seatclient.lease import TERMINAL, Backoff, Lease
from seatclient.targets import Targets
from seatclient.v1 import seat_pb2, types_pb2

# Keepalive intervals without an answered renewal before a stream is given up.
STALE_INTERVALS = 2.0

# Seconds since the user was last active, asked before each keepalive (None: unknown).
IdleSource = Callable[[], float | None]


log = logging.getLogger("seatclient")


class SeatCore:
    def __init__(
        self,
        grant: wire.Granted,
        sent_at: float,
        backoff: Backoff,
        targets: Targets,
        idle_seconds: IdleSource | None = None,
    ) -> None:
        self.session_id = grant.session_id
        self.token = grant.token
        self.terms = grant.terms
        self.licence: types_pb2.LicenceSummary = grant.licence
        self.targets = targets
        # A standby named the leader: reattach there at once, not after a backoff.
        self._redirected = False
        # This side cancelled the stream (`stale`); when the current stream's attach was sent.
        self._gave_up = False
        self._stream_sent = sent_at
        self.lease = Lease(grant.terms, sent_at)
        self.backoff = backoff
        self._attempt = 0
        self._attached = False
        self._drain_after: float | None = None
        # The daemon's word on why the seat ended (None while held, or once released).
        self.ending: SeatError | None = None
        self.idle_seconds = idle_seconds
        # When `touch` last said the user was active (monotonic); None: never.
        self._active_at: float | None = None

    @property
    def target(self) -> str:
        return self.targets.current

    @property
    def state(self) -> SeatState:
        return self.lease.state

    @property
    def ended(self) -> bool:
        return self.lease.state in TERMINAL

    # -- what to send ------------------------------------------------------------------------

    def attach(self, now: float | None = None) -> seat_pb2.KeepaliveRequest:
        """The first message of a new stream, sent `now` (from then on the stream gets its
        own two intervals before `stale` gives it up)."""
        self._attached = False
        if now is not None:
            self._stream_sent = now
        return wire.attach_request(self.session_id, self.token)

    def ping(self, now: float) -> tuple[seat_pb2.KeepaliveRequest, list[SeatEvent]]:
        change = self.lease.check(now)
        request = wire.ping_request(self.lease.ping_sent(now), self.idle(now))
        return request, [change] if change else []

    def stale(self, now: float) -> bool:
        """True when the stream should be given up: no renewal answered for
        `STALE_INTERVALS` keepalive intervals, with several targets. A frozen cluster leader
        (paused, a hung VM) keeps its connection open and answers nothing; the seat then
        reattaches to the next target instead of waiting for TCP to notice. With one target
        the stream is kept: attaching again to the same frozen server only queues a second
        attach there, which could supersede this one when it resumes."""
        if self.lease.state in TERMINAL or len(self.targets.all) < 2:
            return False
        heard = max(self.lease.renewed_sent_at, self._stream_sent)
        if now - heard <= self.terms.keepalive_interval * STALE_INTERVALS:
            return False
        self.targets.failed(DaemonUnavailable(f"{self.target} stopped answering renewals"))
        self._gave_up = True
        return True

    def touch(self, now: float) -> None:
        self._active_at = now

    def idle(self, now: float) -> float | None:
        """Seconds the user has been idle, from the application's callback or its last
        `touch`; None when it reports neither (or the callback fails: a broken callback
        must not cost the seat)."""
        if self.idle_seconds is not None:
            try:
                idle = self.idle_seconds()
            except Exception:
                log.exception("seat %s: the idle_seconds callback failed", self.session_id)
                return None
            if idle is None or not math.isfinite(idle):
                return None
            return max(0.0, float(idle))
        return None if self._active_at is None else max(0.0, now - self._active_at)

    def release_request(self) -> seat_pb2.ReleaseRequest:
        return seat_pb2.ReleaseRequest(session_id=self.session_id, lease_token=self.token)

    # -- what happened -----------------------------------------------------------------------

    def on_response(
        self, response: seat_pb2.KeepaliveResponse, attach_sent: float
    ) -> list[SeatEvent]:
        kind = response.WhichOneof("event")
        if kind == "attached":
            self._attached = True
            return _some(self.lease.attached(attach_sent))
        if kind == "pong":
            return _some(self.lease.acknowledged(response.pong.seq))
        event = wire.pushed_event(response)
        if isinstance(event, EvictedEvent):
            self.ending = Evicted(
                f"session {self.session_id} was disconnected by {event.by}: {event.reason}",
                reason=event.reason,
                by=event.by,
            )
            return [event, *_some(self.lease.end(SeatState.EVICTED))]
        if isinstance(event, Draining):
            self._drain_after = event.reattach_after
            return [event]
        if isinstance(event, LicenceChanged):
            self.licence = event.licence
            return [event]
        if isinstance(event, IdleWarning):
            return [event]
        return []

    def on_refused(self, exc: grpc.RpcError) -> list[SeatEvent]:
        """The stream ended with an error: the daemon's word on the lease, or a network fault."""
        if self._gave_up and exc.code() is grpc.StatusCode.CANCELLED:
            return []  # our own cancel (`stale`): the target already moved on
        error = from_rpc_error(exc, self.target)
        self._redirected = self.targets.failed(error)
        if isinstance(error, Evicted | LeaseLost | Superseded) and not self.ended:
            self.ending = error
        if isinstance(error, Evicted):
            ended = detail_of(exc).ended
            evicted = EvictedEvent(
                self.session_id, ended.reason, ended.by, ended.at.ToDatetime(tzinfo=UTC)
            )
            return [evicted, *_some(self.lease.end(SeatState.EVICTED))]
        if isinstance(error, LeaseLost):
            return _some(self.lease.end(SeatState.LOST))
        if isinstance(error, Superseded):
            return _some(self.lease.end(SeatState.SUPERSEDED))
        return []

    def on_stream_end(self, now: float) -> tuple[list[SeatEvent], float]:
        """The stream is gone without the lease ending: jeopardy, and how long to wait."""
        events = _some(self.lease.broken(now))
        if self._gave_up:
            # The stream already waited two intervals for an answer: try again at once (the
            # next target, when there are several) rather than add a backoff on top.
            self._gave_up = False
            return events, 0.0
        self._attempt = 0 if self._attached else self._attempt + 1
        if self._redirected:
            delay, self._redirected = 0.0, False
        elif self._drain_after is not None:
            # The daemon is restarting: spread the reattach storm over the announced delay.
            delay = self._drain_after * (0.5 + self.backoff.rng.random())
            self._drain_after = None
        else:
            delay = self.backoff.delay(self._attempt, self.targets.retry_cap)
        return events, delay

    def on_released(self) -> list[SeatEvent]:
        return _some(self.lease.end(SeatState.RELEASED))


def _some(event: SeatEvent | None) -> list[SeatEvent]:
    return [event] if event is not None else []
