"""seatctl over several remote targets: where an admin call a standby refused goes next."""

from __future__ import annotations

import grpc
from seatclient.contract import Meta, Reason
from seatclient.v1 import types_pb2

from seatd.ctl.leader import next_target, standby_message

TARGETS = ["a:7118", "b:7118"]


def not_leader(admin: str = "", leader: str = "", name: str = "") -> types_pb2.ErrorDetail:
    return types_pb2.ErrorDetail(
        reason=Reason.NOT_LEADER,
        metadata={Meta.LEADER: leader, Meta.LEADER_NAME: name, Meta.LEADER_ADMIN: admin},
    )


def test_a_standby_naming_the_leaders_admin_listener_sends_the_call_there() -> None:
    """NOT_LEADER with leader_admin: that address next, even if it is not among the targets."""
    got = next_target(TARGETS, ["a:7118"], grpc.StatusCode.UNAVAILABLE, not_leader("c:7118"))
    assert got == "c:7118"


def test_a_standby_naming_no_admin_listener_gives_way_to_the_next_target() -> None:
    """NOT_LEADER without leader_admin: the next target not tried yet."""
    got = next_target(TARGETS, ["a:7118"], grpc.StatusCode.UNAVAILABLE, not_leader())
    assert got == "b:7118"


def test_a_target_that_does_not_answer_gives_way_to_the_next() -> None:
    """UNAVAILABLE with no reason (nothing answered): the next target."""
    got = next_target(TARGETS, ["a:7118"], grpc.StatusCode.UNAVAILABLE, types_pb2.ErrorDetail())
    assert got == "b:7118"


def test_an_answer_from_the_daemon_or_a_deadline_stands() -> None:
    """A refusal with another reason, or a deadline (the call may have run), goes nowhere."""
    denied = types_pb2.ErrorDetail(reason=Reason.PERMISSION_DENIED)
    assert next_target(TARGETS, ["a:7118"], grpc.StatusCode.PERMISSION_DENIED, denied) is None
    silent = types_pb2.ErrorDetail()
    assert next_target(TARGETS, ["a:7118"], grpc.StatusCode.DEADLINE_EXCEEDED, silent) is None


def test_following_stops_once_every_address_was_tried() -> None:
    """A leader address already tried and no target left: the refusal stands (no loop)."""
    tried = ["a:7118", "b:7118"]
    assert next_target(TARGETS, tried, grpc.StatusCode.UNAVAILABLE, not_leader("a:7118")) is None


def test_the_standby_message_names_the_leader_and_the_remote_line() -> None:
    """The message says it is a standby, names the leader, and the seatctl --remote to run."""
    msg = standby_message(not_leader("10.0.0.2:7118", "10.0.0.2:7117", "seat-b"), "here")
    assert "at here is a standby" in msg
    assert "the cluster's leader is seat-b at 10.0.0.2:7117" in msg
    assert "seatctl --remote 10.0.0.2:7118 ..." in msg


def test_a_read_that_ran_out_of_time_goes_to_the_next_target() -> None:
    """A frozen host answers nothing, not even a refusal: a call that only reads goes on to
    the next target; one that may have acted does not."""
    got = next_target(
        TARGETS, ["a:7118"], grpc.StatusCode.DEADLINE_EXCEEDED, types_pb2.ErrorDetail(), True
    )
    assert got == "b:7118"
    assert (
        next_target(TARGETS, ["a:7118"], grpc.StatusCode.DEADLINE_EXCEEDED, types_pb2.ErrorDetail())
        is None
    )


def test_every_read_named_is_an_admin_method() -> None:
    """A misspelt name in READS would never be followed after a deadline."""
    from seatd.ctl.leader import _METHODS, READS

    assert READS.issubset(_METHODS)
