"""What a held seat decides, without I/O (h11's way): the drivers only move messages.

`blocking.Seat` (a thread) and `aio.AsyncSeat` (a task) feed the core what happened on the
keepalive stream and publish the events it returns; the core owns the lease state, the
reattach delay and the meaning of every response and refusal.
"""

from __future__ import annotations

from datetime import UTC

import grpc

from seatclient import wire
from seatclient.errors import (
    Evicted,
    LeaseLost,
    SeatError,
    Superseded,
    detail_of,
    from_rpc_error,
)
from seatclient.events import Draining, EvictedEvent, LicenceChanged, SeatEvent, SeatState
from seatclient.lease import TERMINAL, Backoff, Lease
from seatclient.v1 import seat_pb2, types_pb2


class SeatCore:
    def __init__(self, grant: wire.Granted, sent_at: float, backoff: Backoff, target: str) -> None:
        self.session_id = grant.session_id
        self.token = grant.token
        self.terms = grant.terms
        self.licence: types_pb2.LicenceSummary = grant.licence
        self.target = target
        self.lease = Lease(grant.terms, sent_at)
        self.backoff = backoff
        self._attempt = 0
        self._attached = False
        self._drain_after: float | None = None
        # The daemon's word on why the seat ended (None while held, or once released).
        self.ending: SeatError | None = None

    @property
    def state(self) -> SeatState:
        return self.lease.state

    @property
    def ended(self) -> bool:
        return self.lease.state in TERMINAL

    # -- what to send ------------------------------------------------------------------------

    def attach(self) -> seat_pb2.KeepaliveRequest:
        self._attached = False
        return wire.attach_request(self.session_id, self.token)

    def ping(self, now: float) -> tuple[seat_pb2.KeepaliveRequest, list[SeatEvent]]:
        change = self.lease.check(now)
        request = wire.ping_request(self.lease.ping_sent(now))
        return request, [change] if change else []

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
        return []

    def on_refused(self, exc: grpc.RpcError) -> list[SeatEvent]:
        """The stream ended with an error: the daemon's word on the lease, or a network fault."""
        error = from_rpc_error(exc, self.target)
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
        self._attempt = 0 if self._attached else self._attempt + 1
        if self._drain_after is not None:
            # The daemon is restarting: spread the reattach storm over the announced delay.
            delay = self._drain_after * (0.5 + self.backoff.rng.random())
            self._drain_after = None
        else:
            delay = self.backoff.delay(self._attempt)
        return events, delay

    def on_released(self) -> list[SeatEvent]:
        return _some(self.lease.end(SeatState.RELEASED))


def _some(event: SeatEvent | None) -> list[SeatEvent]:
    return [event] if event is not None else []
