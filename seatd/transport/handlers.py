"""Register a servicer from its service descriptor, with deserializers that never raise.

grpc answers a request it cannot decode with UNKNOWN before any servicer runs. Here a
message that does not decode becomes a `Malformed` marker, which `translated` turns into
INVALID_ARGUMENT naming the expected message type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from seatd.clock import Clock
from seatd.metrics import RPC_SECONDS


@dataclass(frozen=True, slots=True)
class Malformed:
    """A request that did not decode as `expected`."""

    expected: str


def _decoder(cls: type[Message]) -> Callable[[bytes], Message | Malformed]:
    def decode(raw: bytes) -> Message | Malformed:
        try:
            return cls.FromString(raw)
        except DecodeError:
            return Malformed(cls.DESCRIPTOR.full_name)

    return decode


def _timed(behaviour: Any, name: str, clock: Clock) -> Any:
    """A unary behaviour whose answer time goes to the RPC latency histogram."""

    observe = RPC_SECONDS.labels(name).observe  # the labelled child looked up once, not per call

    async def timed(request: Any, context: Any) -> Any:
        started = clock.monotonic()
        try:
            return await behaviour(request, context)
        finally:
            observe(clock.monotonic() - started)

    return timed


class HandlerSink(Protocol):
    """A grpc server, or what collects handlers for one (`seatd.cluster.handover`)."""

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Sequence[grpc.GenericRpcHandler]
    ) -> None: ...


class Registry(HandlerSink, Protocol):
    """A grpc server, or one whose calls are capped per peer (`seatd.transport.peers`):
    grpc's own helpers (health, reflection) register through both methods."""

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None: ...


def add_service(
    server: HandlerSink, service: ServiceDescriptor, servicer: Any, clock: Clock
) -> None:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        factory = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(method.client_streaming, method.server_streaming)]
        behaviour = getattr(servicer, method.name)
        if not (method.client_streaming or method.server_streaming):
            behaviour = _timed(behaviour, method.name, clock)
        handlers[method.name] = factory(
            behaviour,
            request_deserializer=_decoder(request_cls),
            response_serializer=response_cls.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
