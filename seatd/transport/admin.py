"""AdminService: see and manage the seats (local unix socket by default)."""

from __future__ import annotations

from typing import Any

import grpc
from seatclient.v1 import admin_pb2, admin_pb2_grpc

from seatd.service import SeatService
from seatd.transport import convert
from seatd.transport.status import translated

Context = grpc.aio.ServicerContext[Any, Any]


def actor_of(context: Context) -> str:
    """Who is calling, for the journal. The local socket's callers are the admin."""
    return "admin"


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: SeatService) -> None:
        self.service = service

    @translated
    async def ListSessions(
        self, request: admin_pb2.ListSessionsRequest, context: Context
    ) -> admin_pb2.ListSessionsResponse:
        now = self.service.clock.wall()
        local = now.astimezone()
        offset = local.utcoffset()
        response = admin_pb2.ListSessionsResponse(
            sessions=[convert.session(s, now) for s in self.service.arbiter.sessions()],
            in_use=self.service.arbiter.in_use,
            server_time=convert.timestamp(now),
            server_utc_offset_seconds=int(offset.total_seconds()) if offset else 0,
            server_timezone=local.tzname() or "",
        )
        cap = self.service.entitlement.seat_cap()
        if cap is not None:
            response.seat_cap = cap
        return response

    @translated
    async def Evict(
        self, request: admin_pb2.EvictRequest, context: Context
    ) -> admin_pb2.EvictResponse:
        ending = await self.service.evict(
            request.session_id, reason=request.reason, by=actor_of(context)
        )
        return admin_pb2.EvictResponse(ended=convert.ended(ending))
