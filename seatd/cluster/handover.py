"""Listeners that change hands: a standby's servers become the leader's without closing.

A grpc server's handlers are fixed once it starts, so each server of a standby is given one
`Switch` as its handler: the standby's refusals until `hand_over`, the leader's handlers
after. The port never closes at a takeover, so a workstation's connection to the standby
carries its calls to the leader (closing the port made every workstation reconnect, and one
that met the port closed waited out grpc's reconnect backoff or went back to the dead
leader: measured, most of a failover's reattach). A call that comes in while the new
leader loads the table is held (at most `HOLD_AT_MOST`) and, once the leader's handlers are in,
answered by them: it needs no retry at all. (A standby whose leader stopped answering holds
its calls too: `seatd.cluster.probe`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import grpc

# Whether a call is to be held rather than answered by the standby now: this instance, just
# elected, loads the table, or the leader it would name no longer answers.
Holding = Callable[[], bool]
# Seconds between the checks of `Holding` while a call is held (a leader elected elsewhere
# meanwhile is named within this), and the longest a call is held (below a client's deadline).
HOLD = 0.5
HOLD_AT_MOST = 5.0


def _kind(handler: grpc.RpcMethodHandler[Any, Any]) -> str:
    return (
        ("stream" if handler.request_streaming else "unary")
        + "_"
        + ("stream" if handler.response_streaming else "unary")
    )


def _find(
    handlers: Sequence[grpc.GenericRpcHandler], details: grpc.HandlerCallDetails
) -> grpc.RpcMethodHandler[Any, Any] | None:
    for generic in handlers:
        found = generic.service(details)
        if found is not None:
            return found
    return None


class Handlers:
    """Where `add_service` puts a servicer's handlers when no server is at hand yet."""

    def __init__(self) -> None:
        self.generic: list[grpc.GenericRpcHandler] = []

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None:
        self.generic.extend(generic_rpc_handlers)


class Switch(grpc.GenericRpcHandler):
    """The handler of one server: the standby's until `hand_over`, the leader's after."""

    def __init__(self, standby: Sequence[grpc.GenericRpcHandler], holding: Holding) -> None:
        self._standby = list(standby)
        self._leader: list[grpc.GenericRpcHandler] | None = None
        self._holding = holding
        self._released = asyncio.Event()
        # Per method: the held version of the standby's handler (made once, not per call).
        self._held: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    @property
    def handed_over(self) -> bool:
        return self._leader is not None

    def hand_over(self, leader: Sequence[grpc.GenericRpcHandler]) -> None:
        """The leader answers every call from now on, the held ones too."""
        self._leader = list(leader)
        self._released.set()

    def release(self) -> None:
        """The listeners are closing: the held calls are answered (refused) now."""
        self._released.set()

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if self._leader is not None:
            return _find(self._leader, handler_call_details)
        found = _find(self._standby, handler_call_details)
        if found is None or not self._holding():
            return found
        method = handler_call_details.method
        held = self._held.get(method)
        if held is None:
            held = self._held[method] = self._hold(found, handler_call_details)
        return held

    def _hold(
        self, standby: grpc.RpcMethodHandler[Any, Any], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """`standby` made to wait for the leader's handler while `holding` says so (at most
        HOLD_AT_MOST), and answered by it when it came, by the standby's refusal when not."""
        kind = _kind(standby)

        async def held(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            loop = asyncio.get_running_loop()
            until = loop.time() + HOLD_AT_MOST
            while not self._released.is_set() and self._holding():
                left = until - loop.time()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), min(HOLD, left))
            answering = standby
            if self._leader is not None:
                answering = _find(self._leader, details) or standby
            behaviour = getattr(answering, kind)
            if inspect.isasyncgenfunction(behaviour):
                async for response in behaviour(request, context):
                    await context.write(response)
                return None
            return await behaviour(request, context)

        factory = getattr(grpc, f"{kind}_rpc_method_handler")
        return factory(  # type: ignore[no-any-return]
            held,
            request_deserializer=standby.request_deserializer,
            response_serializer=standby.response_serializer,
        )
