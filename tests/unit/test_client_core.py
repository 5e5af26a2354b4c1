"""The client's sans-IO seat core: what each daemon answer means for the seat."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from seatclient import wire
from seatclient.core import SeatCore
from seatclient.events import Draining, Evicted, IdleWarning, SeatState, StateChanged
from seatclient.lease import Backoff, Terms
from seatclient.targets import Targets
from seatclient.v1 import seat_pb2, types_pb2

from tests.fakes import FakeRpcError

TERMS = Terms(ttl=30, keepalive_interval=10, reattach_grace=10)


def core(targets: str = "t:1") -> SeatCore:
    grant = wire.Granted(7, "tok", TERMS, types_pb2.LicenceSummary(), datetime.now(UTC))
    backoff = Backoff(rng=random.Random(1))
    return SeatCore(grant, sent_at=100.0, backoff=backoff, targets=Targets(targets))


def refused(code: grpc.StatusCode, detail: types_pb2.ErrorDetail) -> FakeRpcError:
    return FakeRpcError(code, detail.message, (("seatd-error-bin", detail.SerializeToString()),))


def test_eviction_pushed_on_the_stream_ends_the_seat() -> None:
    """An Evicted message yields the event, then EVICTED."""
    c = core()
    at = Timestamp(seconds=1_700_000_000)
    msg = seat_pb2.KeepaliveResponse(
        evicted=seat_pb2.Evicted(session_id=7, reason="r", by="admin", at=at)
    )
    events = c.on_response(msg, attach_sent=100.0)
    assert isinstance(events[0], Evicted) and events[0].reason == "r"
    assert events[1] == StateChanged(SeatState.ACTIVE, SeatState.EVICTED)
    assert c.ended


def test_reattach_refused_as_evicted_reports_who_and_why() -> None:
    """NOT_FOUND with SESSION_EVICTED after a reconnect yields the eviction's reason and actor."""
    c = core()
    detail = types_pb2.ErrorDetail(
        reason="SESSION_EVICTED",
        ended=types_pb2.EndedSession(session_id=7, reason="audit", by="admin"),
    )
    events = c.on_refused(refused(grpc.StatusCode.NOT_FOUND, detail))  # type: ignore[arg-type]
    assert isinstance(events[0], Evicted) and (events[0].reason, events[0].by) == ("audit", "admin")
    assert c.state is SeatState.EVICTED


@pytest.mark.parametrize("code", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED])
def test_daemon_saying_the_lease_is_gone_is_lost(code: grpc.StatusCode) -> None:
    """NOT_FOUND (expired) or UNAUTHENTICATED is the daemon's word: LOST."""
    c = core()
    detail = types_pb2.ErrorDetail(reason="SESSION_EXPIRED", message="session 7 expired")
    assert c.on_refused(refused(code, detail)) == [  # type: ignore[arg-type]
        StateChanged(SeatState.ACTIVE, SeatState.LOST)
    ]


def test_unreachable_daemon_is_only_jeopardy() -> None:
    """UNAVAILABLE says nothing about the lease: the seat is in jeopardy and reattaches."""
    c = core()
    assert c.on_refused(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "connect failed")) == []  # type: ignore[arg-type]
    events, delay = c.on_stream_end(now=101.0)
    assert events == [StateChanged(SeatState.ACTIVE, SeatState.JEOPARDY)]
    assert 0 <= delay <= Backoff().ceiling(1)


def test_a_standby_naming_the_leader_sends_the_reattach_there_at_once() -> None:
    """NOT_LEADER with the leader's address: jeopardy, and the reattach goes there now."""
    c = core("a:1,b:2")
    detail = types_pb2.ErrorDetail(reason="NOT_LEADER", metadata={"leader": "b:2"})
    assert c.on_refused(refused(grpc.StatusCode.UNAVAILABLE, detail)) == []  # type: ignore[arg-type]
    events, delay = c.on_stream_end(now=101.0)
    assert events == [StateChanged(SeatState.ACTIVE, SeatState.JEOPARDY)]
    assert (c.target, delay) == ("b:2", 0.0)


def test_a_frozen_server_is_given_up_after_two_silent_intervals() -> None:
    """No renewal answered for two keepalive intervals (a paused leader keeps its
    connection open): the stream is given up and the next target tried; our own cancel
    then ends nothing."""
    c = core("a:1,b:2")
    assert not c.stale(100.0 + 2 * TERMS.keepalive_interval)
    assert c.stale(100.0 + 2 * TERMS.keepalive_interval + 0.1)
    assert c.target == "b:2"
    assert c.on_refused(FakeRpcError(grpc.StatusCode.CANCELLED, "cancelled")) == []  # type: ignore[arg-type]
    assert c.state is SeatState.ACTIVE
    _, delay = c.on_stream_end(now=121.0)
    assert delay == 0.0


def test_a_new_stream_gets_its_own_two_intervals_before_it_is_given_up() -> None:
    """Reattaching long after the last renewal (the daemon was down), the new stream is not
    given up at its first ping: its attach has two intervals to be answered."""
    c = core("a:1,b:2")
    later = 100.0 + 10 * TERMS.keepalive_interval
    c.attach(later)
    assert not c.stale(later + TERMS.keepalive_interval)
    assert c.target == "a:1"


def test_a_cluster_client_never_waits_more_than_a_second_between_reattaches() -> None:
    """With several targets the reattach backoff stops growing at one second (an election
    takes a lease TTL; nobody should sleep past the new leader's first second)."""
    c = core("a:1,b:2")
    delays = []
    for n in range(12):
        c.on_refused(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "down"))  # type: ignore[arg-type]
        delays.append(c.on_stream_end(now=101.0 + n)[1])
    assert max(delays) <= 1.0


def test_a_single_servers_silent_stream_is_kept() -> None:
    """With one target a silent stream is not given up: reattaching to the same paused
    daemon would queue a second attach there that could supersede this one."""
    c = core("a:1")
    assert not c.stale(100.0 + 10 * TERMS.keepalive_interval)
    assert c.target == "a:1"


def test_draining_spreads_the_reattach_over_the_announced_delay() -> None:
    """After Draining(d), the reattach waits between d/2 and 3d/2."""
    c = core()
    msg = seat_pb2.KeepaliveResponse(draining=seat_pb2.Draining())
    msg.draining.reattach_after.FromSeconds(4)
    assert c.on_response(msg, 100.0) == [Draining(4.0)]
    _, delay = c.on_stream_end(now=101.0)
    assert 2.0 <= delay <= 6.0


def test_backoff_grows_while_reattaches_fail_and_resets_after_one_works() -> None:
    """Failed reattaches raise the backoff ceiling; a successful attach resets it."""
    c = core()
    ceilings = []
    for _ in range(4):
        c.attach()
        c.on_stream_end(now=101.0)
        ceilings.append(c._attempt)
    assert ceilings == [1, 2, 3, 4]
    c.attach()
    c.on_response(seat_pb2.KeepaliveResponse(attached=seat_pb2.Attached(session_id=7)), 102.0)
    c.on_stream_end(now=103.0)
    assert c._attempt == 0


def test_superseded_stream_ends_the_seat_without_reattaching() -> None:
    """ABORTED with STREAM_SUPERSEDED is SUPERSEDED: terminal, so the driver stops."""
    c = core()
    detail = types_pb2.ErrorDetail(reason="STREAM_SUPERSEDED", message="attached again")
    events = c.on_refused(refused(grpc.StatusCode.ABORTED, detail))  # type: ignore[arg-type]
    assert events == [StateChanged(SeatState.ACTIVE, SeatState.SUPERSEDED)]
    assert c.ended


def test_a_ping_reports_no_idle_time_until_the_application_says_anything() -> None:
    """Without touch() or a callback the ping carries no idle field (never reclaimed)."""
    request, _ = core().ping(110.0)
    assert not request.ping.HasField("idle")


def test_a_ping_reports_the_time_since_the_last_touch() -> None:
    """touch() at 100 s, ping at 130 s: the ping says 30 s idle."""
    c = core()
    c.touch(100.0)
    request, _ = c.ping(130.0)
    assert request.ping.idle.ToTimedelta().total_seconds() == 30.0


def test_a_ping_reports_what_the_idle_callback_says_and_survives_its_failure() -> None:
    """The idle_seconds callback wins; one that raises reports nothing, keeps the seat."""
    c = core()
    c.idle_seconds = lambda: 42.5
    assert c.ping(110.0)[0].ping.idle.ToTimedelta().total_seconds() == 42.5

    def broken() -> float:
        raise RuntimeError("no input device")

    c.idle_seconds = broken
    assert not c.ping(120.0)[0].ping.HasField("idle")


def test_an_idle_warning_reaches_the_application_and_keeps_the_seat() -> None:
    """IdleWarning is an event for the application; the seat stays active."""
    c = core()
    msg = seat_pb2.KeepaliveResponse(
        idle_warning=seat_pb2.IdleWarning(
            evict_at=Timestamp(seconds=1_700_000_000), reason="idle for 31 min"
        )
    )
    (event,) = c.on_response(msg, attach_sent=100.0)
    assert isinstance(event, IdleWarning) and event.reason == "idle for 31 min"
    assert event.evict_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert c.state is SeatState.ACTIVE
