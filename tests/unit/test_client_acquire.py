"""The plan of one acquire (sans-IO): deadlines, retries, and what each refusal becomes."""

from __future__ import annotations

import random
from typing import Any

import grpc
import pytest
from seatclient import wire
from seatclient.acquiring import AcquirePlan
from seatclient.errors import (
    DaemonUnavailable,
    SeatsExhausted,
    TakeoverTargetGone,
)
from seatclient.lease import Backoff
from seatclient.settings import ClientSettings
from seatclient.v1 import seat_pb2, types_pb2

from tests.fakes import FakeClock, FakeRpcError


def settings(clock: FakeClock, timeout: float = 10.0) -> ClientSettings:
    return ClientSettings(
        "seats:7117", timeout=timeout, clock=clock, backoff=Backoff(rng=random.Random(1))
    )


def plan(
    clock: FakeClock, wait: float | None = None, evict: int | None = None, user: str = "BB"
) -> AcquirePlan:
    return AcquirePlan.start(settings(clock), user, "", evict, "", wait)


def refused(code: grpc.StatusCode, detail: types_pb2.ErrorDetail) -> Any:
    return FakeRpcError(code, detail.message, (("seatd-error-bin", detail.SerializeToString()),))


UNREACHABLE: Any = FakeRpcError(
    grpc.StatusCode.UNAVAILABLE, "failed to connect: Connection refused"
)


def test_wait_bounds_the_whole_acquire_reconnects_included() -> None:
    """With wait=12 and the daemon unreachable, retries go on until 12 s, and not later."""
    clock = FakeClock()
    p = plan(clock, wait=12)
    start = clock.monotonic()

    def retry_until_raised() -> None:
        while True:
            call = p.next_call(clock.monotonic())
            clock.advance(min(call.timeout, 0.01))  # the refused connection costs 10 ms
            clock.advance(p.failed(UNREACHABLE, clock.monotonic()).delay)

    with pytest.raises(DaemonUnavailable):
        retry_until_raised()
    assert 11.8 <= clock.monotonic() - start <= 12


def test_without_wait_the_timeout_bounds_the_acquire() -> None:
    """No wait: the client's timeout is the whole acquire's deadline."""
    clock = FakeClock()
    p = plan(clock)
    assert p.next_call(clock.monotonic()).timeout == 10
    clock.advance(10)
    with pytest.raises(DaemonUnavailable):
        p.next_call(clock.monotonic())


def test_each_attempt_asks_the_daemon_to_wait_what_is_left_less_a_margin() -> None:
    """After 5 s of a 12 s wait, the daemon is asked to wait 6.5 s in a 7 s call."""
    clock = FakeClock()
    p = plan(clock, wait=12)
    clock.advance(5)
    call = p.next_call(clock.monotonic())
    assert call.timeout == 7
    assert call.request.wait.ToTimedelta().total_seconds() == 6.5
    assert call.streamed


def test_an_unreachable_daemon_is_retried_and_reported() -> None:
    """UNAVAILABLE is retried after a backoff and handed to the application in words."""
    clock = FakeClock()
    retry = plan(clock, wait=12).failed(UNREACHABLE, clock.monotonic())
    assert retry.unreachable is not None and retry.delay >= 0
    assert retry.unreachable.target == "seats:7117"
    assert str(retry.unreachable) == (
        "the seat server at seats:7117 cannot be reached: "
        "nothing is listening there (is seatd running?)"
    )
    assert "Connection refused" in retry.unreachable.cause


def test_the_idempotency_key_is_kept_across_attempts() -> None:
    """A retry sends the same idempotency key: a lost reply is the same seat."""
    clock = FakeClock()
    p = plan(clock, wait=12)
    first = p.next_call(clock.monotonic()).request.idempotency_key
    p.failed(UNREACHABLE, clock.monotonic())
    assert p.next_call(clock.monotonic()).request.idempotency_key == first


def test_an_older_daemons_not_found_for_a_takeover_is_target_gone() -> None:
    """SESSION_NOT_FOUND answering a takeover means the chosen session is gone."""
    clock = FakeClock()
    detail = types_pb2.ErrorDetail(reason="SESSION_NOT_FOUND", message="session 4 does not exist")
    with pytest.raises(TakeoverTargetGone) as gone:
        plan(clock, evict=4).failed(refused(grpc.StatusCode.NOT_FOUND, detail), 1000.0)
    assert gone.value.session_id == 4


def test_a_refusal_marks_the_askers_own_sessions() -> None:
    """Sessions of the asking user in a SEATS_EXHAUSTED refusal are own_user."""
    clock = FakeClock()
    detail = types_pb2.ErrorDetail(reason="SEATS_EXHAUSTED", seat_cap=2, in_use=2)
    detail.sessions.add(id=1, user_code="AA")
    detail.sessions.add(id=2, user_code="BB")
    with pytest.raises(SeatsExhausted) as full:
        plan(clock, user="BB").failed(refused(grpc.StatusCode.RESOURCE_EXHAUSTED, detail), 0.0)
    assert [(s.id, s.own_user) for s in full.value.sessions] == [(1, False), (2, True)]


def test_a_position_is_reported_once_per_change() -> None:
    """The same position twice is reported once; the grant ends the updates."""
    clock = FakeClock()
    p = plan(clock, wait=12)
    queued = seat_pb2.WaitForSeatResponse(queued=seat_pb2.Queued(position=2))
    assert p.update(queued) == (2, None)
    assert p.update(queued) == (0, None)
    grant = seat_pb2.AcquireResponse(session_id=9)
    assert p.update(seat_pb2.WaitForSeatResponse(granted=grant)) == (0, grant)
    assert wire.queue_position(()) == 0
