"""The arbiter under seat policies against a simple model, step by step (hypothesis state
machine): acquires, releases, expiries, evictions, policy reloads, idle reports and idle
reclaim, and the wait queue. After every grant: the cap, every reservation, every max and
max_per_user hold; every decision matches the model's; the queue serves by priority then
first come first served."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from seatd.arbiter import Arbiter, LeaseTerms
from seatd.errors import PolicyRefused, SeatsExhausted
from seatd.model import Holder, Instant
from seatd.policy import Policy, parse
from seatd.waitqueue import QueueConfig, WaitQueue

TERMS = LeaseTerms(ttl=30, keepalive_interval=10, grace=5, reattach_grace=10, restart_grace=30)
CAP = 5
IDLE = {"reclaim_after": 60, "warn_before": 20}

POLICIES = [
    parse({}),
    parse(
        {
            "max_per_user": 2,
            "groups": {
                "acc": {"users": ["A1", "A2"], "reserve": 2, "priority": 5},
                "int": {"hosts": ["int-*"], "max": 2},
                "gst": {"networks": ["10.9.0.0/16"], "exclude": True},
            },
            "idle": IDLE,
        }
    ),
    parse(
        {
            "groups": {
                "acc": {"users": ["A1", "A2"], "reserve": 1, "max": 3},
                "int": {"hosts": ["int-*"], "reserve": 1, "priority": -1},
            },
            "idle": {**IDLE, "only_when_waiting": False},
        }
    ),
    parse({"max_per_user": 1, "groups": {"int": {"hosts": ["INT-*"], "max": 0}}}),
]

HOLDERS = [
    Holder("A1", "", "acc-1", "10.0.0.1", "1"),
    Holder("A2", "", "acc-2", "10.0.0.2", "1"),
    Holder("I1", "", "int-1", "10.0.0.3", "1"),
    Holder("I2", "", "int-2", "10.0.0.4", "1"),
    Holder("G1", "", "pc-9", "10.9.1.1", "1"),
    Holder("U1", "", "pc-1", "10.0.0.5", "1"),
    Holder("U2", "", "pc-2", "10.0.0.6", "1"),
]


def expected_refusal(policy: Policy, live: list[Holder], h: Holder) -> str | None:
    """The model: the rule that refuses `h`, computed from scratch ("cap" for the cap)."""
    group = policy.group_of(h)
    by_group = Counter(g.name for g in map(policy.group_of, live) if g is not None)
    by_user = Counter(x.user_code for x in live)
    if group is not None and group.exclude:
        return "exclude"
    if policy.max_per_user and by_user[h.user_code] >= policy.max_per_user:
        return "max_per_user"
    if group is not None and group.max is not None and by_group[group.name] >= group.max:
        return "max"
    if len(live) >= CAP:
        return "cap"
    owed = sum(
        max(0, g.reserve - by_group[g.name])
        for g in policy.groups
        if g.reserve and (group is None or g.name != group.name)
    )
    if CAP - len(live) - 1 < owed:
        return "reserve"
    return None


class PolicyTable(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.policy = POLICIES[1]
        self.arbiter = Arbiter(TERMS, policy=self.policy)
        self.mono = 0.0
        # Model: session id -> (holder, token, expires_at)
        self.live: dict[int, tuple[Holder, str, float]] = {}
        self.keys = 0
        self.queue: WaitQueue[tuple[int, int]] = WaitQueue(QueueConfig())
        self.joined = 0

    def now(self) -> Instant:
        return Instant(self.mono, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.mono))

    def holders(self) -> list[Holder]:
        return [h for h, _, _ in self.live.values()]

    @rule(h=st.sampled_from(HOLDERS))
    def acquire(self, h: Holder) -> None:
        self.keys += 1
        expected = expected_refusal(self.policy, self.holders(), h)
        decided: str | None = None
        try:
            s = self.arbiter.grant(
                h, key=f"k{self.keys}", token=f"t{self.keys}", now=self.now(), cap=CAP
            ).session
        except PolicyRefused as refused:
            decided = refused.rule
        except SeatsExhausted:
            decided = "cap"
        assert decided == expected, (decided, expected)
        if decided is not None:
            return
        assert expected is None, f"granted although {expected} should refuse"
        self.live[s.id] = (h, s.token, self.mono + TERMS.ttl + TERMS.grace)
        self.check_after_grant(h)

    def check_after_grant(self, h: Holder) -> None:
        live = self.holders()
        by_group = Counter(g.name for g in map(self.policy.group_of, live) if g is not None)
        assert len(live) <= CAP
        mine = self.policy.group_of(h)
        for g in self.policy.groups:
            if g.max is not None and mine is not None and g.name == mine.name:
                assert by_group[g.name] <= g.max
        if self.policy.max_per_user:
            assert Counter(x.user_code for x in live)[h.user_code] <= self.policy.max_per_user
        others_unused = sum(
            max(0, g.reserve - by_group[g.name])
            for g in self.policy.groups
            if mine is None or g.name != mine.name
        )
        assert CAP - len(live) >= others_unused, "a reserved seat went to someone else"

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def release(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        self.arbiter.release(sid, self.live.pop(sid)[1], self.now())

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def evict(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        self.arbiter.evict(sid, reason="r", by="admin", now=self.now())
        del self.live[sid]

    @rule(data=st.data(), idle=st.one_of(st.none(), st.floats(0, 200)))
    @precondition(lambda self: bool(self.live))
    def ping(self, data: st.DataObject, idle: float | None) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        h, token, _ = self.live[sid]
        self.arbiter.renew(sid, token, self.now(), idle=idle)
        self.live[sid] = (h, token, self.mono + TERMS.ttl + TERMS.grace)

    @rule(seconds=st.floats(min_value=0, max_value=40, allow_nan=False))
    def advance_and_reap(self, seconds: float) -> None:
        self.mono += seconds
        expired = {e.ending.session.id for e in self.arbiter.expire(self.now())}
        due = {sid for sid, (_, _, exp) in self.live.items() if exp <= self.mono}
        assert expired == due
        for sid in due:
            del self.live[sid]

    @rule(waiting=st.integers(0, 3))
    def reclaim_idle(self, waiting: int) -> None:
        idle = self.policy.idle
        before = {s.id: s for s in self.arbiter.sessions()}
        step = self.arbiter.reclaim_idle(self.now(), waiting)
        for ended in step.evicted:
            s = before[ended.ending.session.id]
            assert s.idle_evict_at is not None and s.idle_evict_at <= self.mono
            assert s.idle_since is not None and s.idle_warned_at is not None
            assert s.idle_since <= s.idle_warned_at - idle.reclaim_after
            assert ended.ending.by == "policy"
            del self.live[s.id]
        for s in step.warned:
            assert s.idle_since is not None and self.mono - s.idle_since >= idle.reclaim_after
        if idle.only_when_waiting:
            pending = [s for s in self.arbiter.sessions() if s.idle_evict_at is not None]
            assert len(pending) + len(step.evicted) <= waiting
        if not idle.enabled:
            assert step.warned == step.evicted == ()

    @rule(index=st.integers(0, len(POLICIES) - 1))
    def reload(self, index: int) -> None:
        in_use = self.arbiter.in_use
        self.policy = POLICIES[index]
        self.arbiter.set_policy(self.policy)
        assert self.arbiter.in_use == in_use, "a reload ended a session"

    @rule(h=st.sampled_from(HOLDERS))
    def wait(self, h: Holder) -> None:
        self.joined += 1
        priority = self.policy.priority_of(h)
        self.queue.join((priority, self.joined), "p", 1e9, priority)

    @rule()
    @precondition(lambda self: len(self.queue) > 0)
    def serve(self) -> None:
        waiting = list(self.queue)
        first = self.queue.pop_first()
        assert first == min(waiting, key=lambda w: (-w[0], w[1])), "not priority then FIFO"

    @invariant()
    def counts_match_the_model(self) -> None:
        by_group = Counter(g.name for g in map(self.policy.group_of, self.holders()) if g)
        assert self.arbiter.group_counts() == dict(by_group)
        assert self.arbiter.in_use == len(self.live)


TestPolicyTable = PolicyTable.TestCase
TestPolicyTable.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
