"""A cap on the calls one peer address holds open on the workstation port.

grpc-python tells a server nothing about connections, only about calls. The daemon bounds
connections with grpc's own arguments (a total cap, a handshake timeout for connections that
never speak, an idle timeout for connections that carry no call; see `seatd.server`), so a
connection only lives long while it carries a call; this interceptor caps those calls per
peer address, so one host cannot hold the port with thousands of streams or waits. Beyond
the cap a new call is refused with RESOURCE_EXHAUSTED (reason TOO_MANY_CALLS).

Loopback peers are not capped: a process on the server itself can exhaust it anyway, and
a terminal server running the ERP next to seatd has every user behind 127.0.0.1.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from seatclient.contract import Reason

from seatd.clock import Clock
from seatd.errors import LimitExceeded
from seatd.limits import PeerCounts
from seatd.transport.seat import peer_ip
from seatd.transport.status import abort

log = structlog.get_logger("seatd")

Context = grpc.aio.ServicerContext[Any, Any]


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "unix", "localhost")


class PeerCallLimit(grpc.aio.ServerInterceptor):
    def __init__(self, per_peer: int, clock: Clock, *, exempt_loopback: bool = True) -> None:
        self.counts = PeerCounts(per_peer, 0)
        self.clock = clock
        self.exempt_loopback = exempt_loopback
        # Per method: the handler grpc found, and that handler wrapped.
        self._wrapped: dict[
            str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]
        ] = {}

    async def _admit(self, context: Context) -> str | None:
        """The peer to count this call against (None: not counted); aborts beyond the cap."""
        ip = peer_ip(context.peer())
        if self.exempt_loopback and _is_loopback(ip):
            return None
        if self.counts.full(ip):
            log.warning("peer.too_many_calls", peer=ip, held=self.counts.held(ip))
            refused = LimitExceeded(
                Reason.TOO_MANY_CALLS,
                f"{ip} already holds {self.counts.held(ip)} calls open, the most one address "
                "may (server.max_calls_per_peer): try again later",
                retry_after=1.0,
            )
            await abort(context, refused, self.clock.wall())
        self.counts.add(ip)
        return ip

    def _release(self, ip: str | None) -> None:
        if ip is not None:
            self.counts.remove(ip)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or not self.counts.per_peer:
            return handler
        # A method's handler is the same object on every call: wrap it once, not per call.
        known = self._wrapped.get(handler_call_details.method)
        if known is None or known[0] is not handler:
            known = (handler, self._wrap(handler))
            self._wrapped[handler_call_details.method] = known
        return known[1]

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        """`handler` with its behaviour counted against the caller's address."""
        kind = (
            ("stream" if handler.request_streaming else "unary")
            + "_"
            + ("stream" if handler.response_streaming else "unary")
        )
        behaviour = getattr(handler, kind)
        if inspect.isasyncgenfunction(behaviour):

            async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
                ip = await self._admit(context)
                try:
                    async for response in behaviour(request, context):
                        yield response
                finally:
                    self._release(ip)

            wrapped: Any = generator
        else:

            async def coroutine(request: Any, context: Context) -> Any:
                ip = await self._admit(context)
                try:
                    return await behaviour(request, context)
                finally:
                    self._release(ip)

            wrapped = coroutine
        factory = getattr(grpc, f"{kind}_rpc_method_handler")
        return factory(  # type: ignore[no-any-return]
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
