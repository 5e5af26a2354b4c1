"""What the blocking and asyncio clients share: settings, the acquire request, retries."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from seatclient import wire
from seatclient.clock import Clock, SystemClock
from seatclient.errors import DaemonUnavailable, SeatError
from seatclient.events import SeatEvent
from seatclient.lease import Backoff
from seatclient.v1 import seat_pb2

Listener = Callable[[SeatEvent], None]
QueueListener = Callable[[int], None]


class ClientSettings:
    def __init__(
        self,
        target: str,
        *,
        client_version: str = "",
        hostname: str | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.target = target
        self.client_version = client_version
        self.hostname = hostname
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff or Backoff()
        # Waits use WaitForSeat (the position streamed as it changes) unless the daemon is
        # older and does not know it: then Acquire with `wait` (the position it joined at).
        self._streamed_waits = True

    def _older_daemon(self, exc: grpc.RpcError) -> bool:
        """A daemon without WaitForSeat answered: fall back to Acquire; True to retry now."""
        if self._streamed_waits and exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            self._streamed_waits = False
            return True
        return False

    def _acquire_request(
        self,
        user_code: str,
        user_name: str,
        evict_session: int | None,
        reason: str,
        wait: float | None,
    ) -> tuple[seat_pb2.AcquireRequest, float]:
        """The request (with its idempotency key, kept across retries) and its deadline."""
        request = wire.acquire_request(
            user_code=user_code,
            user_name=user_name,
            hostname=self.hostname,
            client_version=self.client_version,
            evict_session=evict_session,
            reason=reason,
            wait=wait,
        )
        return request, self.clock.monotonic() + self.timeout + (wait or 0.0)

    def _retry_after(self, error: SeatError, attempt: int, deadline: float) -> float | None:
        """How long to wait before retrying an acquire that failed with `error`, or None."""
        delay = self.backoff.delay(attempt)
        if isinstance(error, DaemonUnavailable) and self.clock.monotonic() + delay < deadline:
            return delay
        return None
