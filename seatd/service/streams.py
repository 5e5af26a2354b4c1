"""Keepalive streams: attaching, pings that renew the lease, detaching."""

from __future__ import annotations

import structlog
from seatclient.contract import Reason

from seatd.errors import (
    LimitExceeded,
    NotLeader,
    SeatdError,
    Superseded,
)
from seatd.limits import PING_BURST, PINGS_PER_INTERVAL, ping_rate
from seatd.model import (
    Instant,
    Reattached,
    Session,
)
from seatd.service.core import Core, consume
from seatd.service.outbox import IdleNotice, Pong, Stream

log = structlog.get_logger("seatd")


class StreamCalls(Core):
    """One keepalive stream per session; a second attach supersedes the first."""

    def attach(self, session_id: int, token: str) -> tuple[Session, Stream]:
        """Bind a new keepalive stream to the session; an older stream is superseded."""
        if self.leadership is not None:
            self.leadership()
        # The token is checked before anything about the session is disclosed.
        before = self.arbiter.owned(session_id, token)
        self._check_penalty(session_id)
        session = self.arbiter.attach(session_id, token, self.now())
        if before.restored or before.streams:
            # Not a seat change: journaled in commit order, nobody waits on it.
            written = self._journal_noise(
                ("reattached", session_id),
                Reattached(session, before.restored, self.clock.wall()),
            )
            if written is not None:
                written.add_done_callback(consume)
        stream = Stream(session_id, token, self.clock.monotonic())
        previous = self._streams.get(session_id)
        if previous is not None:
            previous.close(Superseded(session_id))
        self._streams[session_id] = stream
        log.info("seat.attached", session_id=session_id, user_code=session.holder.user_code)
        return session, stream

    def _check_penalty(self, session_id: int) -> None:
        """Refuse a reattach while its session serves a ping-flood penalty: at once, before
        any work. (Not held like a refused wait: a held stream lets its client fill the
        stream's flow-control window with pings, which grpc's own threads then read; measured,
        that cost more CPU than answering every reattach.)"""
        until = self._penalties.get(session_id)
        if until is None:
            return
        remaining = until - self.clock.monotonic()
        if remaining <= 0:
            del self._penalties[session_id]
            return
        raise LimitExceeded(
            Reason.PING_FLOOD,
            f"this session's keepalive stream sent pings faster than allowed: reattach in "
            f"{remaining:.1f} s and ping once per keepalive interval",
            retry_after=remaining,
        )

    def ping(self, stream: Stream, seq: int, idle: float | None = None) -> None:
        """A ping renews the lease; `idle` (seconds, as the workstation reports it) feeds
        idle reclaim, and activity after an idle warning withdraws it."""
        if stream.abandoned:
            return
        if self._streams.get(stream.session_id) is not stream:
            stream.close()
            return
        terms = self.arbiter.terms
        interval = terms.keepalive_interval
        now = self.clock.monotonic()
        if not stream.pings.take(now, ping_rate(interval), PING_BURST):
            # Its reattaches are refused until then: a client that reattaches at once
            # (whatever the hint says) floods once per penalty, not once per round trip. Half
            # the grace, so that a client that waits as told still finds its seat.
            penalty = min(interval, terms.reattach_grace / 2)
            self._penalties[stream.session_id] = now + penalty
            stream.abandon(
                LimitExceeded(
                    Reason.PING_FLOOD,
                    f"keepalive pings arrive faster than {PINGS_PER_INTERVAL:g} per keepalive "
                    f"interval ({interval:g} s): reattach in {penalty:g} s and ping once per "
                    "interval",
                    retry_after=penalty,
                )
            )
            return
        # The monotonic reading taken for the ping budget serves the renewal too.
        at = Instant(now, self.clock.wall())
        try:
            if self.leadership is not None:
                self.leadership()
            renewal = self.arbiter.renew(stream.session_id, stream.token, at, idle=idle)
        except NotLeader as deposed:
            # Not renewed: the workstation reattaches to whoever leads now.
            self._streams.pop(stream.session_id, None)
            stream.close(deposed)
            return
        except SeatdError as gone:
            self._streams.pop(stream.session_id, None)
            stream.close(gone)
            return
        stream.push(Pong(seq, terms.ttl))
        if renewal.withdrawn:
            log.info("seat.idle_warning_withdrawn", session_id=stream.session_id, reason="activity")
            stream.push(IdleNotice(at.wall, "activity seen: the seat stays", 0.0, withdrawn=True))

    def detach(self, stream: Stream) -> None:
        """The stream ended: a live session keeps its seat only for the reattach grace."""
        if self._streams.get(stream.session_id) is not stream:
            return
        del self._streams[stream.session_id]
        session = self.arbiter.detach(stream.session_id, self.now())
        if session is not None:
            log.info(
                "seat.detached",
                session_id=session.id,
                user_code=session.holder.user_code,
                reattach_grace=self.arbiter.terms.reattach_grace,
            )
