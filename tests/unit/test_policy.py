"""Seat policy: the [policy] section, membership, each rule in the arbiter, idle reclaim and
the wait queue's priorities, driven by a fake clock."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from seatclient.contract import Reason

from seatd import config
from seatd.arbiter import Arbiter, IdleStep, LeaseTerms, Takeover, TakeoverPolicy
from seatd.errors import ConfigError, PolicyExcluded, PolicyRefused, SeatsExhausted
from seatd.model import EndKind, Holder, Instant, Session
from seatd.policy import Policy, parse, parse_text
from seatd.waitqueue import QueueConfig, WaitQueue
from tests.fakes import FakeClock

TERMS = LeaseTerms(ttl=30, keepalive_interval=10, grace=5, reattach_grace=10, restart_grace=30)

MONTH_END: dict[str, Any] = {
    "max_per_user": 2,
    "groups": {
        "accounting": {"users": ["ANNA", "BORIS"], "hosts": ["acc-*"], "reserve": 1},
        "interns": {"users": ["IA", "IB", "IC"], "max": 2},
        "guests": {"networks": ["192.168.100.0/24"], "exclude": True},
        "managers": {"users": ["MM"], "priority": 10},
    },
}


def policy(**overrides: Any) -> Policy:
    return parse({**MONTH_END, **overrides})


def holder(user: str, host: str = "pc-1", ip: str = "10.0.0.7") -> Holder:
    return Holder(user, user, host, ip, "15.2")


class Table:
    """An arbiter under a policy, with a fake clock and a seat cap."""

    def __init__(self, pol: Policy, cap: int | None = 4) -> None:
        self.clock = FakeClock()
        self.arbiter = Arbiter(TERMS, policy=pol)
        self.cap = cap
        self.keys = 0

    def now(self) -> Instant:
        return Instant(self.clock.monotonic(), self.clock.wall())

    def grant(self, who: Holder | str, takeover: Takeover | None = None) -> Session:
        self.keys += 1
        h = holder(who) if isinstance(who, str) else who
        return self.arbiter.grant(
            h,
            key=f"k{self.keys}",
            token=f"t{self.keys}",
            now=self.now(),
            cap=self.cap,
            takeover=takeover,
        ).session

    def refused(self, who: Holder | str) -> PolicyRefused:
        before = copy.deepcopy((self.arbiter.sessions(), self.arbiter.group_counts()))
        with pytest.raises(PolicyRefused) as refused:
            self.grant(who)
        assert (self.arbiter.sessions(), self.arbiter.group_counts()) == before
        return refused.value


# -- the [policy] section ------------------------------------------------------------------


def test_the_month_end_policy_parses_with_its_groups_in_file_order() -> None:
    """[policy] with groups, rules and idle settings gives a Policy value."""
    p = config.build(
        {"policy": {**MONTH_END, "idle": {"reclaim_after": "30m", "warn_before": "2m"}}}
    ).policy
    assert [g.name for g in p.groups] == ["accounting", "interns", "guests", "managers"]
    assert (p.groups[0].reserve, p.groups[1].max, p.groups[2].exclude) == (1, 2, True)
    assert (p.idle.reclaim_after, p.idle.warn_before, p.idle.only_when_waiting) == (1800, 120, True)
    assert p.max_per_user == 2 and p.rules == 6


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"groups": {"x": {"users": ["A"], "maxx": 1}}}, "unknown key policy.groups.x.maxx"),
        ({"groups": {"x": {"networks": ["10.0.0.300/24"]}}}, "policy.groups.x.networks"),
        ({"groups": {"x": {"reserve": 1}}}, "policy.groups.x: names no members"),
        ({"groups": {"x": {"users": ["A"], "reserve": 3, "max": 2}}}, "reserve (3) is more"),
        ({"groups": {"x": {"users": ["A"], "max": -1}}}, "policy.groups.x.max: must be"),
        ({"idle": {"reclaim_after": "5m", "warn_before": "5m"}}, "must be shorter than"),
        ({"idle": {"reclaim_after": "soon"}}, "policy.idle.reclaim_after: expected a duration"),
        ({"max_per_user": "one"}, "policy.max_per_user: expected a whole number"),
        ({"takeover": "nobody"}, "policy.takeover: expected one of"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key(table: dict[str, Any], message: str) -> None:
    """check-config refuses a policy mistake with the key at fault."""
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.build({"policy": table})


def test_check_config_prints_the_policy_back_as_toml_that_loads_the_same(tmp_path: Any) -> None:
    """The rendered effective config holds the policy and loads to the same value."""
    c = config.build({"policy": {**MONTH_END, "idle": {"reclaim_after": "30m"}}})
    path = tmp_path / "effective.toml"
    path.write_text(config.render(c))
    assert config.load(path, {}).policy == c.policy


# -- membership ---------------------------------------------------------------------------


def test_membership_by_user_host_pattern_or_network_first_group_wins() -> None:
    """User codes, hostname patterns (any case) and CIDR networks; the first match wins."""
    p = policy()
    assert p.group_of(holder("ANNA")).name == "accounting"  # type: ignore[union-attr]
    assert p.group_of(holder("ZED", host="ACC-7")).name == "accounting"  # type: ignore[union-attr]
    assert p.group_of(holder("ZED", ip="192.168.100.9")).name == "guests"  # type: ignore[union-attr]
    assert p.group_of(holder("ZED", ip="::ffff:192.168.100.9")).name == "guests"  # type: ignore[union-attr]
    assert p.group_of(holder("ANNA", ip="192.168.100.9")).name == "accounting"  # type: ignore[union-attr]
    assert p.group_of(holder("ZED")) is None


# -- the rules ----------------------------------------------------------------------------


def test_an_excluded_group_is_refused_and_nothing_changes() -> None:
    """exclude = true refuses with POLICY_EXCLUDED naming the group; never worth waiting."""
    t = Table(policy())
    refused = t.refused(holder("ZED", ip="192.168.100.9"))
    assert isinstance(refused, PolicyExcluded) and not refused.waitable
    assert (refused.reason, refused.rule, refused.group) == (
        Reason.POLICY_EXCLUDED,
        "exclude",
        "guests",
    )


def test_a_group_at_its_max_is_refused_with_the_rules_name() -> None:
    """The third intern is refused: `group interns is at its max of 2`."""
    t = Table(policy(), cap=10)
    t.grant("IA")
    t.grant("IB")
    refused = t.refused("IC")
    assert refused.message == "group interns is at its max of 2"
    assert (refused.reason, refused.rule, refused.group) == (Reason.POLICY_MAX, "max", "interns")


def test_a_group_at_its_max_learns_that_rather_than_that_seats_are_full() -> None:
    """At capacity, a group at its max is told its max (a free seat would not be its)."""
    t = Table(parse({"groups": {"interns": MONTH_END["groups"]["interns"]}}), cap=2)
    t.grant("IA")
    t.grant("IB")
    assert t.refused("IC").reason == Reason.POLICY_MAX


def test_one_user_holds_at_most_max_per_user_seats() -> None:
    """max_per_user = 2: a third seat for ZED is refused with POLICY_PER_USER."""
    t = Table(policy(), cap=10)
    t.grant(holder("ZED", host="a"))
    t.grant(holder("ZED", host="b"))
    refused = t.refused(holder("ZED", host="c"))
    assert refused.reason == Reason.POLICY_PER_USER and "max_per_user = 2" in refused.message
    t.grant("YVES")


def test_a_reserved_seat_is_not_taken_by_others() -> None:
    """cap 4, accounting reserves 1: the fourth seat goes to nobody else."""
    t = Table(policy(), cap=4)
    for user in ("U1", "U2", "U3"):
        t.grant(user)
    refused = t.refused("U4")
    assert refused.message.startswith("1 seat is reserved for accounting")
    assert (refused.reason, refused.group) == (Reason.POLICY_RESERVED, "accounting")
    assert t.grant("ANNA").holder.user_code == "ANNA"


def test_a_group_beyond_its_reservation_shares_the_common_seats() -> None:
    """Accounting may take more than its reserve while common seats are free."""
    t = Table(policy(), cap=4)
    t.grant("ANNA")
    t.grant("BORIS")
    t.grant("U1")
    assert t.grant("U2").holder.user_code == "U2"  # the reservation is in use: none held back
    with pytest.raises(SeatsExhausted):
        t.grant("U3")


def test_a_takeover_cannot_hand_a_reserved_seat_to_someone_else() -> None:
    """Evicting an accountant at capacity frees their reserved seat, still not for others."""
    t = Table(policy(), cap=2)
    anna = t.grant("ANNA")
    t.grant("U1")
    with pytest.raises(PolicyRefused) as refused:
        t.grant("U2", takeover=Takeover(anna.id, "mine now", TakeoverPolicy.ANYONE))
    assert refused.value.reason == Reason.POLICY_RESERVED
    assert [s.holder.user_code for s in t.arbiter.sessions()] == ["ANNA", "U1"]


def test_a_reload_ends_no_session_and_holds_for_the_next_grant() -> None:
    """Lowering interns' max under the live count evicts nobody; the next one is refused."""
    t = Table(policy(), cap=10)
    t.grant("IA")
    t.grant("IB")
    t.arbiter.set_policy(parse({"groups": {"interns": {"users": ["IA", "IB", "IC"], "max": 1}}}))
    assert t.arbiter.in_use == 2 and t.arbiter.group_counts() == {"interns": 2}
    assert t.refused("IC").message == "group interns is at its max of 1"


def test_without_a_policy_nothing_is_refused_but_the_cap() -> None:
    """The default policy leaves grants to the cap alone."""
    t = Table(Policy(), cap=2)
    t.grant("IA")
    t.grant("IA")
    with pytest.raises(SeatsExhausted):
        t.grant("IA")


# -- idle reclaim ---------------------------------------------------------------------------

IDLE = {"idle": {"reclaim_after": "30m", "warn_before": "2m"}}


def idle_table(**idle: Any) -> tuple[Table, Session, Session]:
    t = Table(parse({"idle": {**IDLE["idle"], **idle}}), cap=2)
    a, b = t.grant("AA"), t.grant("BB")
    return t, a, b


def report(t: Table, s: Session, idle: float) -> Session:
    return t.arbiter.renew(s.id, s.token, t.now(), idle=idle).session


def test_an_idle_seat_is_warned_when_someone_waits() -> None:
    """Idle past reclaim_after with a waiter: a warning, eviction due warn_before later."""
    t, a, b = idle_table()
    report(t, a, 0)
    report(t, b, 0)
    t.clock.advance(30 * 60)
    report(t, a, 30 * 60)
    report(t, b, 5)
    assert t.arbiter.reclaim_idle(t.now(), waiting=0).warned == ()
    step = t.arbiter.reclaim_idle(t.now(), waiting=1)
    assert [s.id for s in step.warned] == [a.id]
    assert step.warned[0].idle_evict_at == t.clock.monotonic() + 120


def test_an_idle_seat_warned_and_still_idle_is_evicted_with_the_reason() -> None:
    """At the warning's deadline, still idle: evicted by the policy, with how long."""
    t, a, _ = idle_table()
    report(t, a, 0)
    t.clock.advance(32 * 60)
    t.arbiter.reclaim_idle(t.now(), waiting=1)
    t.clock.advance(2 * 60)
    step = t.arbiter.reclaim_idle(t.now(), waiting=1)
    (ended,) = step.evicted
    e = ended.ending
    assert (e.session.id, e.kind, e.by) == (a.id, EndKind.EVICTED, "policy")
    assert e.reason == "idle for 34 min; the seat went to a waiting user"
    assert t.arbiter.in_use == 1


def test_activity_after_the_warning_cancels_it() -> None:
    """A ping reporting activity after the warning withdraws it: no eviction."""
    t, a, _ = idle_table()
    report(t, a, 0)
    t.clock.advance(31 * 60)
    t.arbiter.reclaim_idle(t.now(), waiting=1)
    t.clock.advance(60)
    renewed = report(t, a, 3)
    assert renewed.idle_evict_at is None
    t.clock.advance(60)
    assert t.arbiter.reclaim_idle(t.now(), waiting=1).evicted == ()
    assert t.arbiter.in_use == 2


def test_the_renewal_says_when_activity_withdrew_the_warning() -> None:
    """renew tells the ping whether it withdrew an idle warning, only on that renewal."""
    t, a, _ = idle_table()
    report(t, a, 0)
    t.clock.advance(31 * 60)
    t.arbiter.reclaim_idle(t.now(), waiting=1)
    t.clock.advance(10)
    assert t.arbiter.renew(a.id, a.token, t.now(), idle=31 * 60 + 10).withdrawn is False
    assert t.arbiter.renew(a.id, a.token, t.now()).withdrawn is False
    assert t.arbiter.renew(a.id, a.token, t.now(), idle=2).withdrawn is True
    assert t.arbiter.renew(a.id, a.token, t.now(), idle=2).withdrawn is False


def test_a_warning_is_withdrawn_once_nobody_waits() -> None:
    """With only_when_waiting, the waiter leaving withdraws the warning; nothing evicted."""
    t, a, _ = idle_table()
    report(t, a, 0)
    t.clock.advance(31 * 60)
    t.arbiter.reclaim_idle(t.now(), waiting=1)
    t.clock.advance(3 * 60)
    step = t.arbiter.reclaim_idle(t.now(), waiting=0)
    assert [s.id for s in step.withdrawn] == [a.id] and step.evicted == ()


def test_no_more_seats_are_reclaimed_than_there_are_waiters() -> None:
    """Two idle seats, one waiter: only the longest idle is warned."""
    t, a, b = idle_table()
    report(t, a, 0)
    t.clock.advance(60)
    report(t, b, 0)
    t.clock.advance(31 * 60)
    assert [s.id for s in t.arbiter.reclaim_idle(t.now(), waiting=1).warned] == [a.id]


def test_idle_seats_are_reclaimed_with_nobody_waiting_when_told_so() -> None:
    """only_when_waiting = false: idle seats go even with an empty queue."""
    t, a, b = idle_table(only_when_waiting=False)
    report(t, a, 0)
    report(t, b, 0)
    t.clock.advance(31 * 60)
    assert len(t.arbiter.reclaim_idle(t.now(), waiting=0).warned) == 2
    t.clock.advance(2 * 60)
    step = t.arbiter.reclaim_idle(t.now(), waiting=0)
    assert len(step.evicted) == 2
    assert step.evicted[0].ending.reason == (
        "idle for 33 min; idle seats are reclaimed after 30 min"
    )


def test_a_workstation_that_reports_no_idle_time_is_never_reclaimed() -> None:
    """Old clients (no idle report) keep their seat however long."""
    t, _, _ = idle_table(only_when_waiting=False)
    t.clock.advance(10 * 3600)
    assert t.arbiter.reclaim_idle(t.now(), waiting=5) == IdleStep()


# -- the wait queue ---------------------------------------------------------------------------


def test_the_queue_serves_higher_priority_first_then_in_arrival_order() -> None:
    """Priority 10 goes ahead of 0; within one priority, first come first served."""
    q: WaitQueue[str] = WaitQueue(QueueConfig())
    assert q.join("a", "p", 60.0)[1] == 1
    assert q.join("b", "p", 60.0)[1] == 2
    assert q.join("boss", "p", 60.0, priority=10)[1] == 1
    assert q.join("c", "p", 60.0, priority=-1)[1] == 4
    assert q.join("boss2", "p", 60.0, priority=10)[1] == 2
    assert list(q) == ["boss", "boss2", "a", "b", "c"]
    assert [q.pop_first() for _ in range(5)] == ["boss", "boss2", "a", "b", "c"]


def test_the_readme_month_end_example_keeps_two_seats_for_accounting() -> None:
    """README's example, 10 seats: after eight others, the ninth goes only to accounting."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("The month-end accountants")[1].split("```toml")[1].split("```")[0]
    t = Table(parse_text(example), cap=10)
    for i in range(8):
        t.grant(f"U{i}")
    refused = t.refused("U8")
    assert refused.message == (
        "2 seats are reserved for accounting: the 2 seats still free are theirs"
    )
    assert t.refused(holder("GUEST1", ip="192.168.100.7")).reason == Reason.POLICY_EXCLUDED
    assert t.grant(holder("ZOE", host="ACC-3")).holder.user_code == "ZOE"
