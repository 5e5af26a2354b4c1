"""SeatService: workstations take a seat, keep it alive and give it back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import grpc
from google.protobuf.duration_pb2 import Duration
from seatclient.contract import QUEUE_POSITION_KEY
from seatclient.v1 import seat_pb2, seat_pb2_grpc
from seatclient.v1.types_pb2 import LicenceSummary

from seatd import errors
from seatd.service import (
    AcquireRequest,
    DrainingNotice,
    EvictedNotice,
    IdleNotice,
    LicenceNotice,
    Notice,
    OnMoved,
    OnQueued,
    Pong,
    SeatService,
    Stream,
)
from seatd.transport import convert, validate
from seatd.transport.handlers import Malformed
from seatd.transport.refusal import Disclosure
from seatd.transport.status import abort, translated

Context = grpc.aio.ServicerContext[Any, Any]


def peer_ip(peer: str) -> str:
    """'ipv4:10.0.0.5:4242' -> '10.0.0.5'; 'ipv6:[::1]:4242' -> '::1'; else the peer as is."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return unquote(rest.rpartition(":")[0]).strip("[]")
    return kind or peer


class SeatServicer(seat_pb2_grpc.SeatServiceServicer):
    def __init__(self, service: SeatService, disclosure: Disclosure = Disclosure.DIALOG) -> None:
        self.service = service
        # How much a refusal at capacity tells an unauthenticated caller (refusal.py).
        self.disclosure = disclosure
        # What every answer repeats, converted once per value rather than once per call:
        # the licence summary (the book keeps one view while its inputs hold) and the lease
        # terms. A response copies these messages; nobody changes them.
        self._summary: tuple[object, LicenceSummary] | None = None
        self._lease_terms: tuple[object, dict[str, Any]] | None = None
        # Every pong repeats the TTL: one Duration per value, not one per ping.
        self._pong_ttl: tuple[float, Duration] | None = None

    def _licence(self) -> LicenceSummary:
        view = self.service.entitlement.view()
        if self._summary is None or self._summary[0] is not view:
            self._summary = (view, convert.licence(view))
        return self._summary[1]

    def _terms(self) -> dict[str, Any]:
        t = self.service.arbiter.terms
        if self._lease_terms is None or self._lease_terms[0] is not t:
            self._lease_terms = (
                t,
                {
                    "ttl": convert.duration(t.ttl),
                    "keepalive_interval": convert.duration(t.keepalive_interval),
                    "reattach_grace": convert.duration(t.reattach_grace),
                },
            )
        return self._lease_terms[1]

    def _ttl(self, ttl: float) -> Duration:
        if self._pong_ttl is None or self._pong_ttl[0] != ttl:
            self._pong_ttl = (ttl, convert.duration(ttl))
        return self._pong_ttl[1]

    @translated
    @validate.validated
    async def Acquire(
        self, request: seat_pb2.AcquireRequest, context: Context
    ) -> seat_pb2.AcquireResponse:
        async def queued(position: int) -> None:
            await context.send_initial_metadata(((QUEUE_POSITION_KEY, str(position)),))

        return await self._acquire(request, context, queued)

    @translated
    @validate.validated
    async def WaitForSeat(  # type: ignore[override]
        self, request: seat_pb2.WaitForSeatRequest, context: Context
    ) -> None:
        # Positions are written by this loop only, latest first: a burst of moves while a
        # write is under way becomes one message, so a slow reader costs the daemon nothing.
        moves: asyncio.Queue[int] = asyncio.Queue()

        async def queued(position: int) -> None:
            moves.put_nowait(position)

        acquiring = asyncio.ensure_future(
            self._acquire(request.acquire, context, queued, moves.put_nowait)
        )
        try:
            while not acquiring.done():
                getting = asyncio.ensure_future(moves.get())
                await asyncio.wait({getting, acquiring}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                position = getting.result()
                while not moves.empty():
                    position = moves.get_nowait()
                await context.write(
                    seat_pb2.WaitForSeatResponse(queued=seat_pb2.Queued(position=position))
                )
            granted = await acquiring
        except errors.Draining as draining:
            await context.write(
                seat_pb2.WaitForSeatResponse(
                    draining=seat_pb2.Draining(
                        reattach_after=convert.duration(draining.retry_after)
                    )
                )
            )
            raise
        finally:
            acquiring.cancel()
        await context.write(seat_pb2.WaitForSeatResponse(granted=granted))

    async def _acquire(
        self,
        request: seat_pb2.AcquireRequest,
        context: Context,
        queued: OnQueued,
        moved: OnMoved | None = None,
    ) -> seat_pb2.AcquireResponse:
        acquired = await self.service.acquire(
            AcquireRequest(
                user_code=request.user_code,
                user_name=request.user_name,
                hostname=request.hostname,
                client_version=request.client_version,
                idempotency_key=request.idempotency_key,
                ip=peer_ip(context.peer()),
                evict_session_id=request.evict_session_id,
                evict_reason=request.evict_reason,
                # Checked by `validated`: a valid Duration, 0 to MAX_WAIT seconds.
                wait=request.wait.seconds + request.wait.nanos / 1e9,
            ),
            on_queued=queued,
            on_moved=moved,
        )
        session = acquired.session
        return seat_pb2.AcquireResponse(
            session_id=session.id,
            lease_token=session.token,
            licence=self._licence(),
            session=convert.session(session, self.service.clock.wall()),
            queue_position=acquired.queue_position,
            waited=convert.duration(acquired.waited),
            **self._terms(),
        )

    @translated
    @validate.validated
    async def Release(
        self, request: seat_pb2.ReleaseRequest, context: Context
    ) -> seat_pb2.ReleaseResponse:
        released = await self.service.release(request.session_id, request.lease_token)
        return seat_pb2.ReleaseResponse(released=released)

    @translated
    @validate.validated
    async def GetLicence(
        self, request: seat_pb2.GetLicenceRequest, context: Context
    ) -> seat_pb2.GetLicenceResponse:
        return seat_pb2.GetLicenceResponse(
            licence=self._licence(),
            in_use=self.service.arbiter.in_use,
        )

    @translated
    async def Keepalive(  # type: ignore[override]
        self, request_iterator: AsyncIterator[seat_pb2.KeepaliveRequest], context: Context
    ) -> None:
        try:
            first = await anext(request_iterator)
        except StopAsyncIteration:
            return
        if isinstance(first, Malformed) or first.WhichOneof("kind") != "attach":
            raise errors.InvalidArgument("attach", "the first keepalive message must attach")
        validate.check(first)
        attach = first.attach
        session, stream = self.service.attach(attach.session_id, attach.lease_token)
        await context.write(
            seat_pb2.KeepaliveResponse(
                attached=seat_pb2.Attached(session_id=session.id, **self._terms())
            )
        )
        reader = asyncio.create_task(self._read(request_iterator, stream))
        writer = asyncio.create_task(self._write(stream, context))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if not stream.abandoned:
                # Write out what is queued (an eviction notice) before the stream ends.
                await writer
        finally:
            for task in (reader, writer):
                task.cancel()
            # A writer's failure was raised above unless the stream was abandoned anyway.
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.service.detach(stream)
        if stream.error is not None:
            await abort(context, stream.error, self.service.clock.wall(), self.disclosure)

    async def _write(self, stream: Stream, context: Context) -> None:
        # A task of its own, so that a workstation that stops reading (its writes wait on
        # flow control) can still have its stream ended when it breaks a bound.
        while (notice := await stream.outbox.get()) is not None:
            await context.write(self._response(notice))

    async def _read(
        self, requests: AsyncIterator[seat_pb2.KeepaliveRequest], stream: Stream
    ) -> None:
        try:
            async for request in requests:
                if isinstance(request, Malformed) or request.WhichOneof("kind") != "ping":
                    stream.close(errors.InvalidArgument("ping", "expected a ping after attach"))
                    return
                # No field check per ping: its fields (seq, a uint64; idle, a duration the
                # arbiter clamps) have no value out of range, and this is the path every
                # workstation takes every interval.
                ping = request.ping
                idle = ping.idle.seconds + ping.idle.nanos / 1e9 if ping.HasField("idle") else None
                self.service.ping(stream, ping.seq, idle)
                if stream.abandoned:
                    return
        except grpc.RpcError:
            pass
        # The workstation closed its side or the connection broke.
        stream.close()

    def _response(self, notice: Notice) -> seat_pb2.KeepaliveResponse:
        if isinstance(notice, Pong):
            return seat_pb2.KeepaliveResponse(
                pong=seat_pb2.Pong(seq=notice.seq, ttl=self._ttl(notice.ttl))
            )
        if isinstance(notice, EvictedNotice):
            e = notice.ending
            return seat_pb2.KeepaliveResponse(
                evicted=seat_pb2.Evicted(
                    session_id=e.session.id,
                    reason=e.reason,
                    by=e.who,
                    at=convert.timestamp(e.at),
                )
            )
        if isinstance(notice, DrainingNotice):
            return seat_pb2.KeepaliveResponse(
                draining=seat_pb2.Draining(reattach_after=convert.duration(notice.reattach_after))
            )
        if isinstance(notice, IdleNotice):
            return seat_pb2.KeepaliveResponse(
                idle_warning=seat_pb2.IdleWarning(
                    evict_at=convert.timestamp(notice.evict_at),
                    reason=notice.reason,
                    idle=convert.duration(notice.idle),
                    withdrawn=notice.withdrawn,
                )
            )
        assert isinstance(notice, LicenceNotice)
        return seat_pb2.KeepaliveResponse(
            licence_changed=seat_pb2.LicenceChanged(licence=convert.licence(notice.licence))
        )
