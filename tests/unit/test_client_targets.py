"""Which seat server the library calls when it has several (`seatclient.targets`)."""

from __future__ import annotations

import pytest
from seatclient.errors import DaemonUnavailable, NotLeader, SeatsExhausted
from seatclient.targets import Targets, parse


def test_targets_parse_from_a_list_or_a_comma_separated_string() -> None:
    """`["a:1", "b:2"]` and `"a:1, b:2"` are the same two targets."""
    assert parse(["a:1", "b:2"]) == parse("a:1, b:2") == ("a:1", "b:2")


def test_no_target_at_all_is_refused() -> None:
    """An empty target list is a caller's mistake, said at once."""
    with pytest.raises(ValueError, match="at least one"):
        parse(" , ")


def test_a_standby_naming_the_leader_sends_the_next_call_there_at_once() -> None:
    """NOT_LEADER with an address: that address next, without backoff."""
    t = Targets("a:1,b:2,c:3")
    assert t.failed(NotLeader("x", leader="c:3"))
    assert t.current == "c:3"


def test_an_instance_naming_itself_the_leader_is_retried_not_left() -> None:
    """NOT_LEADER naming the instance asked (elected, loading its table): stay, after a
    backoff, rather than go to a target that can only be the dead leader."""
    t = Targets("a:1,b:2")
    assert not t.failed(NotLeader("loading", leader="a:1"))
    assert t.current == "a:1"


def test_an_unreachable_target_moves_on_to_the_next_one() -> None:
    """UNAVAILABLE without a leader named: the next target in the list, after a backoff."""
    t = Targets(["a:1", "b:2"])
    assert not t.failed(DaemonUnavailable("down"))
    assert t.current == "b:2"
    t.failed(NotLeader("electing", leader=""))
    assert t.current == "a:1"


def test_an_advertised_leader_outside_the_list_falls_back_to_the_list() -> None:
    """When the leader a standby named goes away, the list is tried from its start."""
    t = Targets(["a:1", "b:2"])
    t.failed(NotLeader("x", leader="10.0.0.9:7117"))
    t.failed(DaemonUnavailable("down"))
    assert t.current == "a:1"


def test_one_target_that_named_a_leader_now_gone_is_called_again() -> None:
    """A single target (a standby) named the leader; when that leader goes away the
    target is called again, not the dead leader forever (it may lead now)."""
    t = Targets("a:1")
    t.failed(NotLeader("x", leader="10.0.0.9:7117"))
    t.failed(DaemonUnavailable("down"))
    assert t.current == "a:1"


def test_one_target_stays_the_target_and_refusals_move_nothing() -> None:
    """A single server, or a refusal that is not about reachability, changes nothing."""
    t = Targets("a:1")
    t.failed(DaemonUnavailable("down"))
    assert t.current == "a:1"
    t2 = Targets("a:1,b:2")
    t2.failed(SeatsExhausted("full", cap=1, in_use=1, sessions=[], retry_after=1))
    assert t2.current == "a:1"
