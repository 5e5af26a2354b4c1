"""One acquire, from the first request to the grant, without I/O (h11's way).

The blocking and asyncio drivers loop the same way: ask `next_call` what to send and how long
to allow, send it, feed every message to `update` (a queue position to report, or the grant),
and on a failed call ask `failed` whether to retry and after how long. The plan owns the rules:

- `wait` bounds the whole acquire, reconnects included (without it, the client's `timeout`
  does). Each attempt asks the daemon to wait only what is left, less a margin, so that the
  daemon's refusal (with its session list) arrives before the call's deadline.
- Only "the daemon cannot be reached / cannot take it now" is retried, with backoff, and never
  past the deadline; every other refusal is final. The idempotency key is kept across
  retries, so a retry after a lost reply is the same seat.
- A daemon without WaitForSeat (UNIMPLEMENTED) is asked with Acquire from then on.
- A takeover target that is gone is `TakeoverTargetGone`; sessions of the asking user in a
  refusal are marked `own_user`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import grpc

from seatclient import wire
from seatclient.errors import (
    AcquireCancelled,
    DaemonUnavailable,
    LeaseLost,
    SeatError,
    SeatsExhausted,
    TakeoverTargetGone,
    from_rpc_error,
    unreachable,
)
from seatclient.settings import ClientSettings
from seatclient.v1 import seat_pb2

# The daemon answers a wait that runs out this long before the call's own deadline.
MARGIN = 0.5
# The least time worth one more call before the deadline.
LAST_TRY = 0.1


@dataclass(frozen=True, slots=True)
class Call:
    """What to send next: WaitForSeat (`streamed`) or Acquire, and the call's timeout."""

    streamed: bool
    request: seat_pb2.AcquireRequest
    timeout: float

    @property
    def wait_request(self) -> seat_pb2.WaitForSeatRequest:
        return wire.wait_request(self.request)


@dataclass(frozen=True, slots=True)
class Retry:
    """Call again after `delay` seconds; `unreachable` is what to tell the application."""

    delay: float
    unreachable: DaemonUnavailable | None


class AcquirePlan:
    def __init__(
        self,
        settings: ClientSettings,
        request: seat_pb2.AcquireRequest,
        *,
        wait: float | None,
        now: float,
    ) -> None:
        self.settings = settings
        self.request = request
        self.wait = wait or 0.0
        self.bound = self.wait or settings.timeout
        self.deadline = now + self.bound
        self.position = 0
        self._attempt = 0
        self._last: SeatError | None = None

    @classmethod
    def start(
        cls,
        settings: ClientSettings,
        user_code: str,
        user_name: str,
        evict_session: int | None,
        reason: str,
        wait: float | None,
    ) -> AcquirePlan:
        """The plan of a new acquire; its idempotency key is kept across every retry."""
        request = wire.acquire_request(
            user_code=user_code,
            user_name=user_name,
            hostname=settings.hostname,
            client_version=settings.client_version,
            evict_session=evict_session,
            reason=reason,
            wait=wait,
        )
        return cls(settings, request, wait=wait, now=settings.clock.monotonic())

    def next_call(self, now: float) -> Call:
        """The next call to make; raises the last error once the time is up."""
        left = self.deadline - now
        if left <= 0:
            raise self._last or self._out_of_time()
        request = self.request
        if self.wait:
            request = seat_pb2.AcquireRequest()
            request.CopyFrom(self.request)
            request.wait.FromNanoseconds(round(max(0.0, left - min(MARGIN, left / 4)) * 1e9))
        return Call(self.wait > 0 and self.settings.streamed_waits, request, left)

    def update(
        self, message: seat_pb2.WaitForSeatResponse | seat_pb2.AcquireResponse
    ) -> tuple[int, seat_pb2.AcquireResponse | None]:
        """A message of the call: a new queue position to report (0: none), or the grant."""
        if isinstance(message, seat_pb2.AcquireResponse):
            return 0, message
        position, granted = wire.wait_update(message)
        return self.moved(position), granted

    def moved(self, position: int) -> int:
        """The position to report, if it is a new one (0 otherwise)."""
        if not position or position == self.position:
            return 0
        self.position = position
        return position

    def failed(self, exc: grpc.RpcError, now: float) -> Retry:
        """A call failed: retry (after how long), or raise the typed error."""
        if self.settings.streamed_waits and exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            # An older daemon without WaitForSeat: Acquire with `wait` from now on.
            self.settings.streamed_waits = False
            return Retry(0.0, None)
        error = from_rpc_error(exc, self.settings.target)
        target = self.request.evict_session_id
        if target and isinstance(error, LeaseLost):
            # An older daemon says SESSION_NOT_FOUND / SESSION_* of the takeover's target.
            error = TakeoverTargetGone(str(error), session_id=target)
        if isinstance(error, SeatsExhausted):
            user = self.request.user_code
            error.sessions = tuple(
                dataclasses.replace(s, own_user=s.user_code == user) for s in error.sessions
            )
        if not isinstance(error, DaemonUnavailable):
            raise error
        self._last = error
        # A standby that named the leader is followed at once; another target is tried
        # after a backoff (capped lower for a cluster).
        targets = self.settings.targets
        redirected = targets.failed(error)
        delay = 0.0 if redirected else self.settings.backoff.delay(self._attempt, targets.retry_cap)
        self._attempt += 1
        left = self.deadline - now
        if left <= LAST_TRY:
            raise error
        # A backoff that would run past the deadline is cut short for one last try.
        return Retry(min(delay, left - LAST_TRY), error)

    def cancelled(self) -> AcquireCancelled:
        return AcquireCancelled(
            f"the acquire for {self.request.user_code} was cancelled: no seat was taken"
        )

    def _out_of_time(self) -> SeatError:
        return unreachable(self.settings.target, grpc.StatusCode.DEADLINE_EXCEEDED, "", self.bound)
