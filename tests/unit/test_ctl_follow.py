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
    """A call's end as grpc raises it: a code and the daemon's ErrorDetail, if any."""

    def __init__(self, code: grpc.StatusCode, reason: str = "") -> None:
        self._code = code
        self._detail = types_pb2.ErrorDetail(reason=reason)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._code.name

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return ((DETAIL_KEY, self._detail.SerializeToString()),) if self._detail.reason else ()


GONE = Ended(grpc.StatusCode.UNAVAILABLE)


class Done(Exception):
    """The script ran out: what the test wanted to see has been shown."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def watching(*seqs: int, then: BaseException | None = GONE, lasting: float = 0.0) -> Any:
    """A WatchJournal stream: these entries, `lasting` seconds, then `then` (None: it stays
    open, and the test is over)."""
    return ("watch", seqs, then, lasting)


def reading(*seqs: int, then: BaseException | None = None) -> Any:
    """A ReadJournal: these entries, or `then` raised."""
    return ("read", seqs, then, 0.0)


class Scripted:
    """An AdminService answering each call with the next step of its script."""

    def __init__(self, clock: Clock, *steps: Any) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.asked: list[tuple[str, int]] = []

    def _next(self, kind: str, after: int) -> Any:
        self.asked.append((kind, after))
        if not self.steps:
            raise Done
        step = self.steps.pop(0)
        assert step[0] == kind, (step, kind)
        return step

    def ReadJournal(self, request: admin_pb2.ReadJournalRequest, **options: Any) -> Any:
        _, seqs, then, _ = self._next("read", request.after_seq)
        if then is not None:
            raise then
        entries = [admin_pb2.JournalEntry(seq=s) for s in seqs]
        last = seqs[-1] if seqs else request.after_seq
        return admin_pb2.ReadJournalResponse(entries=entries, next_after_seq=last, more=False)

    def WatchJournal(self, request: admin_pb2.WatchJournalRequest) -> Iterator[Any]:
        _, seqs, then, lasting = self._next("watch", request.after_seq)
        for seq in seqs:
            yield admin_pb2.WatchJournalResponse(entry=admin_pb2.JournalEntry(seq=seq))
        self.clock.now += lasting
        if then is None:
            raise Done
        raise then


def follow(admin: Scripted, after: int = 0) -> list[int]:
    shown: list[int] = []
    with pytest.raises(Done):
        watch(
            admin,  # type: ignore[arg-type]
            after,
            admin_pb2.JournalFilter(),
            lambda e: shown.append(e.seq),
            clock=admin.clock,
            sleep=admin.clock.sleep,
        )
    return shown


def test_a_failover_mid_stream_reads_what_was_missed_then_follows_after_it() -> None:
    """The leader dies after entry 12; 13 is written meanwhile: it is read once, and the
    stream reopens after it."""
    admin = Scripted(Clock(), watching(11, 12), reading(13), watching(14, then=None))
    assert follow(admin, after=10) == [11, 12, 13, 14]
    assert admin.asked == [("watch", 10), ("read", 12), ("watch", 13)]


def test_a_leader_stepping_down_and_an_election_under_way_are_waited_out() -> None:
    """NOT_LEADER from the old leader, then nobody answering for a while: it keeps looking,
    from the same entry, until a daemon answers."""
    admin = Scripted(
        Clock(),
        watching(5, then=Ended(grpc.StatusCode.UNAVAILABLE, Reason.NOT_LEADER)),
        reading(then=GONE),
        reading(then=Ended(grpc.StatusCode.DEADLINE_EXCEEDED)),  # a frozen host
        reading(6),
        watching(7, then=None),
    )
    assert follow(admin) == [5, 6, 7]
    assert [after for _, after in admin.asked] == [0, 5, 5, 5, 6]


def test_an_answer_from_the_daemon_is_not_retried() -> None:
    """PERMISSION_DENIED (a revoked token, say) is the daemon's answer: it stands at once."""
    denied = Ended(grpc.StatusCode.PERMISSION_DENIED, Reason.PERMISSION_DENIED)
    admin = Scripted(Clock(), watching(1, then=denied))
    with pytest.raises(Ended) as raised:
        follow(admin)
    assert raised.value is denied


def test_no_daemon_for_the_whole_bound_leaves_the_last_error() -> None:
    """Nobody answers for FIND_DAEMON_FOR seconds: the last error stands (seatctl then says
    what it says for an unreachable daemon), after a bounded number of looks."""
    looks = int(FIND_DAEMON_FOR / LOOK_EVERY) + 3
    admin = Scripted(Clock(), watching(), *([reading(then=GONE)] * looks))
    with pytest.raises(Ended):
        follow(admin)
    assert FIND_DAEMON_FOR < admin.clock.now <= FIND_DAEMON_FOR + 2 * LOOK_EVERY
    assert admin.steps  # it stopped before running out of answers


def test_each_outage_gets_the_whole_bound_even_with_nothing_shown_between() -> None:
    """A daemon that answered again resets the bound, even if the stream then stayed quiet
    (a filter let nothing through) for an hour before the next restart."""
    almost = int(FIND_DAEMON_FOR / LOOK_EVERY * 0.8)
    admin = Scripted(
        Clock(),
        watching(5),
        *([reading(then=GONE)] * almost),
        reading(),
        watching(lasting=3600.0),
        *([reading(then=GONE)] * almost),
        reading(),
        watching(7, then=None),
    )
    assert follow(admin) == [5, 7]
