"""The arbiter against a simple model, step by step (hypothesis state machine)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from seatd.arbiter import Arbiter, LeaseTerms
from seatd.errors import SeatsExhausted
from seatd.model import Holder, Instant

TERMS = LeaseTerms(ttl=30, keepalive_interval=10, grace=5, reattach_grace=10, restart_grace=30)
USERS = st.sampled_from(["AA", "BB", "CC", "DD"])


class SeatTable(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.arbiter = Arbiter(TERMS)
        self.mono = 0.0
        self.cap = 3
        # Model: session id -> (token, expires_at, key)
        self.live: dict[int, tuple[str, float, str]] = {}
        self.keys = 0
        # The most sessions that may be live: the cap, or more only if the cap was lowered
        # under the live count, and then shrinking as they end.
        self.allowance = self.cap

    def now(self) -> Instant:
        from datetime import UTC, datetime, timedelta

        return Instant(self.mono, datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.mono))

    @rule(user=USERS)
    def grant(self, user: str) -> None:
        self.keys += 1
        key = f"k{self.keys}"
        before = len(self.live)
        try:
            s = self.arbiter.grant(
                Holder(user, user, "pc", "ip", "1"),
                key=key,
                token=key,
                now=self.now(),
                cap=self.cap,
            ).session
        except SeatsExhausted:
            assert before >= self.cap
            return
        assert before < self.cap, "granted although the cap was reached"
        self.live[s.id] = (s.token, self.mono + TERMS.ttl + TERMS.grace, key)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def retry(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        token, _, key = self.live[sid]
        user = self.arbiter.get(sid).holder
        s = self.arbiter.grant(user, key=key, token="other", now=self.now(), cap=self.cap).session
        assert (s.id, s.token) == (sid, token)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def release(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        self.arbiter.release(sid, self.live.pop(sid)[0], self.now())

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def evict(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        self.arbiter.evict(sid, reason="r", by="admin", now=self.now())
        del self.live[sid]

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def renew(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        token, _, key = self.live[sid]
        self.arbiter.renew(sid, token, self.now())
        self.live[sid] = (token, self.mono + TERMS.ttl + TERMS.grace, key)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.live))
    def detach(self, data: st.DataObject) -> None:
        sid = data.draw(st.sampled_from(sorted(self.live)))
        token, expires, key = self.live[sid]
        self.arbiter.detach(sid, self.now())
        self.live[sid] = (token, min(expires, self.mono + TERMS.reattach_grace), key)

    @rule(seconds=st.floats(min_value=0, max_value=40, allow_nan=False))
    def advance_and_reap(self, seconds: float) -> None:
        self.mono += seconds
        expired = {e.ending.session.id for e in self.arbiter.expire(self.now())}
        due = {sid for sid, (_, exp, _) in self.live.items() if exp <= self.mono}
        assert expired == due
        for sid in due:
            del self.live[sid]

    @rule(cap=st.integers(min_value=0, max_value=5))
    def change_cap(self, cap: int) -> None:
        self.cap = cap
        self.allowance = max(cap, len(self.live))

    @invariant()
    def table_matches_model(self) -> None:
        assert [s.id for s in self.arbiter.sessions()] == sorted(self.live)

    @invariant()
    def live_sessions_never_exceed_the_cap(self) -> None:
        # DESIGN.md invariant 1, after every step.
        self.allowance = max(self.cap, min(self.allowance, self.arbiter.in_use))
        assert self.arbiter.in_use <= self.allowance


SeatTable.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSeatTable = SeatTable.TestCase
