"""`seatctl journal --follow`: a stream lost to a restart or a failover is taken up again from
the last entry shown (a scripted AdminService, a fake clock: no network, no sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from seatclient.contract import DETAIL_KEY, Reason
from seatclient.v1 import admin_pb2, types_pb2

from seatd.ctl.journal import FIND_DAEMON_FOR, LOOK_EVERY, watch


class Ended(grpc.RpcError):
    """A stream's end as grpc raises it: a code and the daemon's ErrorDetail, if any."""

    def __init__(self, code: grpc.StatusCode, reason: str = "") -> None:
        self._code = code
        self._detail = types_pb2.ErrorDetail(reason=reason)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ((DETAIL_KEY, self._detail.SerializeToString()),) if self._detail.reason else ()


class Scripted:
    """WatchJournal answering each call with the next script: seqs, then how it ends (None:
    the stream stays open and the test is over)."""

    def __init__(self, *scripts: tuple[list[int], BaseException | None]) -> None:
        self.scripts = list(scripts)
        self.asked: list[int] = []

    def WatchJournal(self, request: admin_pb2.WatchJournalRequest) -> Iterator[Any]:
        self.asked.append(request.after_seq)
        seqs, end = self.scripts.pop(0)
        for seq in seqs:
            yield admin_pb2.WatchJournalResponse(entry=admin_pb2.JournalEntry(seq=seq))
        if end is None:
            raise Done
        raise end


class Done(Exception):
    """The script ran out: what the test wanted to see has been shown."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def follow(admin: Scripted, clock: Clock, after: int = 0) -> list[int]:
    shown: list[int] = []
    with pytest.raises(Done):
        watch(
            admin,  # type: ignore[arg-type]
            after,
            admin_pb2.JournalFilter(),
            lambda e: shown.append(e.seq),
            clock=clock,
            sleep=clock.sleep,
        )
    return shown


def test_a_failover_mid_stream_resumes_after_the_last_entry_shown() -> None:
    """The leader dies after entry 12: the next stream asks from 12, so entry 13 is shown
    once and nothing between is missed."""
    admin = Scripted(
        ([11, 12], Ended(grpc.StatusCode.UNAVAILABLE)),
        ([13, 14], None),
    )
    clock = Clock()
    assert follow(admin, clock, after=10) == [11, 12, 13, 14]
    assert admin.asked == [10, 12]
    assert clock.slept == [LOOK_EVERY]


def test_a_leader_stepping_down_and_an_election_under_way_are_waited_out() -> None:
    """NOT_LEADER from the old leader, then no instance reachable for a while: it keeps
    looking, from the same entry, until a leader answers."""
    admin = Scripted(
        ([5], Ended(grpc.StatusCode.UNAVAILABLE, Reason.NOT_LEADER)),
        ([], Ended(grpc.StatusCode.UNAVAILABLE)),
        ([], Ended(grpc.StatusCode.CANCELLED)),
        ([6], None),
    )
    assert follow(admin, Clock()) == [5, 6]
    assert admin.asked == [0, 5, 5, 5]


def test_an_answer_from_the_daemon_is_not_retried() -> None:
    """PERMISSION_DENIED (a revoked token, say) is the daemon's answer: it stands at once."""
    denied = Ended(grpc.StatusCode.PERMISSION_DENIED, Reason.PERMISSION_DENIED)
    admin = Scripted(([1], denied))
    shown: list[int] = []
    with pytest.raises(Ended) as raised:
        watch(
            admin,  # type: ignore[arg-type]
            0,
            admin_pb2.JournalFilter(),
            lambda e: shown.append(e.seq),
            clock=Clock(),
            sleep=Clock().sleep,
        )
    assert raised.value is denied
    assert shown == [1]


def test_no_daemon_for_the_whole_bound_leaves_the_last_error() -> None:
    """Nobody answers for FIND_DAEMON_FOR seconds: the last error stands (seatctl then says
    what it says for an unreachable daemon), after a bounded number of looks."""
    gone = Ended(grpc.StatusCode.UNAVAILABLE)
    looks = int(FIND_DAEMON_FOR / LOOK_EVERY) + 3
    admin = Scripted(*([([], gone)] * looks))
    clock = Clock()
    with pytest.raises(Ended):
        watch(
            admin,  # type: ignore[arg-type]
            0,
            admin_pb2.JournalFilter(),
            lambda e: None,
            clock=clock,
            sleep=clock.sleep,
        )
    assert FIND_DAEMON_FOR < clock.now <= FIND_DAEMON_FOR + 2 * LOOK_EVERY
    assert admin.scripts  # it stopped before running out of answers


def test_each_outage_gets_the_whole_bound() -> None:
    """An entry shown resets the bound: two failovers an hour apart are both waited out."""
    gone = Ended(grpc.StatusCode.UNAVAILABLE)
    half = int(FIND_DAEMON_FOR / LOOK_EVERY * 0.8)
    admin = Scripted(
        ([1], gone),
        *([([], gone)] * half),
        ([2], gone),
        *([([], gone)] * half),
        ([3], None),
    )
    assert follow(admin, Clock()) == [1, 2, 3]
