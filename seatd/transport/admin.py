"""AdminService over gRPC: identify the caller, then hand the request to its admin action.

What each RPC does, and who may call it, lives once in `seatd.actions` (shared with the web
console); this servicer only turns the connection into an `Actor` and domain errors into
statuses (`translated`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from seatclient.v1 import admin_pb2

from seatd import auth
from seatd.actions import AdminActions
from seatd.errors import Unauthenticated
from seatd.model import Actor
from seatd.service import SeatService
from seatd.transport.status import translated

Context = grpc.aio.ServicerContext[Any, Any]


class AdminServicer:
    """Its RPC methods are made below, one per AdminService method."""

    def __init__(self, actions: AdminActions, identities: dict[str, str] | None = None) -> None:
        self.actions = actions
        self.identities = identities or {}

    @property
    def service(self) -> SeatService:
        # `translated` reads the clock from here.
        return self.actions.service

    def identify(self, context: Context) -> Actor:
        metadata = {k: v for k, v in context.invocation_metadata() or ()}
        if context.peer().startswith("unix:"):
            return auth.local_actor(str(metadata.get(auth.USER_KEY, "")))
        names = context.auth_context().get("x509_common_name")
        if names:
            return auth.certificate_actor(next(iter(names)).decode(), self.identities)
        bearer = str(metadata.get("authorization", ""))
        if bearer.startswith("Bearer "):
            actor = self.actions.service.token_actor(bearer.removeprefix("Bearer "))
            if actor is None:
                raise Unauthenticated("the admin token is unknown or revoked")
            return actor
        raise Unauthenticated(
            "remote administration needs a client certificate or a token "
            "(seatctl token create on the server)"
        )


def _unary(name: str) -> Callable[..., Awaitable[Any]]:
    @translated
    async def call(self: AdminServicer, request: Any, context: Context) -> Any:
        act: Callable[[Actor, Any], Awaitable[Any]] = getattr(self.actions, name)
        return await act(self.identify(context), request)

    call.__name__ = name
    return call


def _streaming(name: str) -> Callable[..., Awaitable[None]]:
    @translated
    async def call(self: AdminServicer, request: Any, context: Context) -> None:
        act: Callable[[Actor, Any], Awaitable[AsyncIterator[Any]]] = getattr(self.actions, name)
        async for message in await act(self.identify(context), request):
            await context.write(message)

    call.__name__ = name
    return call


# Every AdminService method, unary or server-streaming, answered by the action of its name.
for _method in admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods:
    setattr(
        AdminServicer,
        _method.name,
        (_streaming if _method.server_streaming else _unary)(_method.name),
    )
