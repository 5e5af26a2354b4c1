"""A cap on the calls one peer address holds open on the workstation port.

grpc-python tells a server nothing about connections, only about calls. The daemon bounds
connections with grpc's own arguments (a total cap, a handshake timeout for connections that
never speak, an idle timeout for connections that carry no call; see `seatd.server`), so a
connection only lives long while it carries a call; this limit caps those calls per peer
address, so one host cannot hold the port with thousands of streams or waits. Beyond the cap
a new call is refused with RESOURCE_EXHAUSTED (reason TOO_MANY_CALLS).

The cap wraps each method's handler once, as it is registered (`PeerCallLimit.capped`), rather
than being a server interceptor: grpc.aio runs an interceptor chain (a coroutine and a handler
lookup through it) on every call, which cost about 0.05 ms a call here. Health checking and
reflection register through grpc's own helpers, so they are handed the capped registry too.

Loopback peers are not capped: a process on the server itself can exhaust it anyway, and
a terminal server running the ERP next to seatd has every user behind 127.0.0.1.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, TypeAlias

import grpc
import structlog
from seatclient.contract import Reason

from seatd.clock import Clock
from seatd.errors import LimitExceeded
from seatd.limits import PeerCounts
from seatd.transport.handlers import Registry
from seatd.transport.seat import peer_ip
from seatd.transport.status import abort

log = structlog.get_logger("seatd")

Context = grpc.aio.ServicerContext[Any, Any]


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "unix", "localhost")


# Only a type to mypy: grpc's RpcMethodHandler cannot be subscripted at run time.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class PeerCallLimit:
    def __init__(self, per_peer: int, clock: Clock, *, exempt_loopback: bool = True) -> None:
        self.counts = PeerCounts(per_peer, 0)
        self.clock = clock
        self.exempt_loopback = exempt_loopback

    def capped(self, server: Registry) -> Registry:
        """`server`, with every handler registered through the result counted per peer."""
        return _Capped(server, self) if self.counts.per_peer else server

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

    def wrap(self, handler: Handler) -> Handler:
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


class _Capped:
    """A server whose handlers, registered through this, are counted against the caller."""

    def __init__(self, server: Registry, limit: PeerCallLimit) -> None:
        self._server = server
        self._limit = limit

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Iterable[grpc.GenericRpcHandler]
    ) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_CappedHandler(h, self._limit) for h in generic_rpc_handlers)
        )

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Handler]
    ) -> None:
        self._server.add_registered_method_handlers(
            service_name, {name: self._limit.wrap(h) for name, h in method_handlers.items()}
        )


class _CappedHandler(grpc.GenericRpcHandler):
    """A generic handler (grpc's helpers build them) whose method handlers are capped."""

    def __init__(self, inner: grpc.GenericRpcHandler, limit: PeerCallLimit) -> None:
        self._inner = inner
        self._limit = limit
        # Per method: the handler the inner one gave, and that handler wrapped. A method's
        # handler is the same object on every call: wrapped once, not per call.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = (handler, self._limit.wrap(handler))
            self._wrapped[method] = known
        return known[1]
