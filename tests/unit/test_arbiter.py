"""The pure seat table, driven by a fake clock."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import pytest

from seatd.arbiter import Arbiter, LeaseTerms, Takeover, TakeoverPolicy
from seatd.errors import (
    InvalidArgument,
    InvalidToken,
    SeatsExhausted,
    SessionEnded,
    SessionNotFound,
    TakeoverDenied,
    TakeoverTargetGone,
)
from seatd.model import Ended, EndKind, Granted, Holder, Instant, Session
from tests.fakes import FakeClock

TERMS = LeaseTerms(ttl=30, keepalive_interval=10, grace=5, reattach_grace=10, restart_grace=30)


def holder(user: str = "AA", host: str = "PC-1") -> Holder:
    return Holder(user, f"{user} name", host, "192.168.1.10", "15.2")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def arbiter() -> Arbiter:
    return Arbiter(TERMS)


def now(clock: FakeClock) -> Instant:
    return Instant(clock.monotonic(), clock.wall())


def grant(
    arbiter: Arbiter,
    clock: FakeClock,
    user: str = "AA",
    key: str | None = None,
    cap: int | None = None,
    **kw: object,
) -> Session:
    key = key or f"key-{user}-{arbiter.next_id}"
    return arbiter.grant(
        holder(user), key=key, token=f"tok-{key}", now=now(clock), cap=cap, **kw
    ).session  # type: ignore[arg-type]


def snapshot(arbiter: Arbiter) -> tuple[object, ...]:
    return (copy.deepcopy(arbiter.sessions()), arbiter.next_id, arbiter.in_use)


def assert_refused_unchanged(
    arbiter: Arbiter, exc: type[Exception], call: Callable[[], object]
) -> None:
    before = snapshot(arbiter)
    with pytest.raises(exc):
        call()
    assert snapshot(arbiter) == before


def test_grants_up_to_the_cap(arbiter: Arbiter, clock: FakeClock) -> None:
    """Grants succeed while fewer sessions than the cap are live."""
    a = grant(arbiter, clock, "AA", cap=2)
    b = grant(arbiter, clock, "BB", cap=2)
    assert [s.id for s in arbiter.sessions()] == [a.id, b.id] == [1, 2]


def test_refuses_beyond_the_cap_and_changes_nothing(arbiter: Arbiter, clock: FakeClock) -> None:
    """At capacity a grant raises SeatsExhausted listing the live sessions; nothing changes."""
    grant(arbiter, clock, "AA", cap=2)
    grant(arbiter, clock, "BB", cap=2)
    before = snapshot(arbiter)
    with pytest.raises(SeatsExhausted) as refused:
        grant(arbiter, clock, "CC", cap=2)
    assert (refused.value.cap, refused.value.in_use) == (2, 2)
    assert [s.holder.user_code for s in refused.value.sessions] == ["AA", "BB"]
    assert snapshot(arbiter) == before


def test_no_cap_means_unlimited(arbiter: Arbiter, clock: FakeClock) -> None:
    """With no cap (the free licence) every grant succeeds."""
    for i in range(50):
        grant(arbiter, clock, f"U{i}")
    assert arbiter.in_use == 50


def test_retry_with_the_same_key_gets_the_same_session(arbiter: Arbiter, clock: FakeClock) -> None:
    """A retry after a lost reply returns the same session and token and records nothing."""
    first = arbiter.grant(holder(), key="k1", token="t1", now=now(clock), cap=1)
    clock.advance(1)
    retry = arbiter.grant(holder(), key="k1", token="t2", now=now(clock), cap=1)
    assert retry.session.id == first.session.id
    assert retry.session.token == "t1"
    assert retry.events == ()
    assert arbiter.in_use == 1


def test_key_reused_by_another_user_is_refused(arbiter: Arbiter, clock: FakeClock) -> None:
    """An idempotency key already held by another user is an invalid argument."""
    grant(arbiter, clock, "AA", key="shared")
    assert_refused_unchanged(
        arbiter, InvalidArgument, lambda: grant(arbiter, clock, "BB", key="shared")
    )


@pytest.mark.parametrize("key", ["", "   ", "x" * 129, "bad\x00key"])
def test_malformed_key_is_refused(arbiter: Arbiter, clock: FakeClock, key: str) -> None:
    """An empty, too long or control-character key is refused before anything changes."""
    assert_refused_unchanged(
        arbiter,
        InvalidArgument,
        lambda: arbiter.grant(holder(), key=key, token="t", now=now(clock), cap=None),
    )


def test_grant_records_a_granted_event(arbiter: Arbiter, clock: FakeClock) -> None:
    """A new grant carries exactly one Granted event for the new session."""
    result = arbiter.grant(holder(), key="k", token="t", now=now(clock), cap=None)
    assert result.events == (Granted(result.session),)


def test_session_ids_are_never_reused(arbiter: Arbiter, clock: FakeClock) -> None:
    """Ids keep increasing after sessions end."""
    a = grant(arbiter, clock, "AA")
    arbiter.release(a.id, a.token, now(clock))
    b = grant(arbiter, clock, "AA")
    assert b.id == a.id + 1


def test_renew_pushes_the_expiry(arbiter: Arbiter, clock: FakeClock) -> None:
    """A renewal makes the lease run TTL + grace from the renewal."""
    s = grant(arbiter, clock)
    clock.advance(20)
    renewed = arbiter.renew(s.id, s.token, now(clock)).session
    assert renewed.expires_at == clock.monotonic() + 30 + 5
    assert renewed.last_seen_at == clock.wall()


def test_wrong_token_is_refused_and_changes_nothing(arbiter: Arbiter, clock: FakeClock) -> None:
    """Renew, attach and release with a wrong token raise InvalidToken; nothing changes."""
    s = grant(arbiter, clock)
    clock.advance(5)
    for call in (arbiter.renew, arbiter.attach, arbiter.release):
        assert_refused_unchanged(arbiter, InvalidToken, lambda c=call: c(s.id, "wrong", now(clock)))


def test_unknown_session_is_not_found(arbiter: Arbiter, clock: FakeClock) -> None:
    """A session id that never existed is NOT_FOUND for renew, release and evict."""
    assert_refused_unchanged(arbiter, SessionNotFound, lambda: arbiter.renew(99, "t", now(clock)))
    assert_refused_unchanged(arbiter, SessionNotFound, lambda: arbiter.release(99, "t", now(clock)))
    assert_refused_unchanged(
        arbiter, SessionNotFound, lambda: arbiter.evict(99, reason="r", by="admin", now=now(clock))
    )


def test_release_frees_the_seat(arbiter: Arbiter, clock: FakeClock) -> None:
    """Release ends the session with a RELEASED ending."""
    s = grant(arbiter, clock, cap=1)
    ended = arbiter.release(s.id, s.token, now(clock))
    assert isinstance(ended, Ended) and ended.ending.kind is EndKind.RELEASED
    assert arbiter.in_use == 0
    grant(arbiter, clock, "BB", cap=1)


def test_release_is_idempotent(arbiter: Arbiter, clock: FakeClock) -> None:
    """Releasing an already ended session returns None and changes nothing."""
    s = grant(arbiter, clock)
    arbiter.release(s.id, s.token, now(clock))
    before = snapshot(arbiter)
    assert arbiter.release(s.id, s.token, now(clock)) is None
    assert snapshot(arbiter) == before


def test_evict_ends_with_reason_and_actor(arbiter: Arbiter, clock: FakeClock) -> None:
    """Eviction carries the reason, who did it and when."""
    s = grant(arbiter, clock)
    clock.advance(60)
    ended = arbiter.evict(
        s.id, reason="Dépassement connexions autorisées", by="admin", now=now(clock)
    )
    e = ended.ending
    assert (e.kind, e.reason, e.by, e.at) == (
        EndKind.EVICTED,
        "Dépassement connexions autorisées",
        "admin",
        clock.wall(),
    )
    assert arbiter.in_use == 0


def test_evict_without_reason_uses_the_default(arbiter: Arbiter, clock: FakeClock) -> None:
    """An empty reason becomes "Connection limit exceeded"."""
    s = grant(arbiter, clock)
    assert arbiter.evict(s.id, reason="", by="admin", now=now(clock)).ending.reason == (
        "Connection limit exceeded"
    )


def test_evicted_token_is_dead_for_good(arbiter: Arbiter, clock: FakeClock) -> None:
    """After eviction the token is refused with SessionEnded carrying the reason."""
    s = grant(arbiter, clock)
    arbiter.evict(s.id, reason="lunch", by="admin", now=now(clock))
    with pytest.raises(SessionEnded) as ended:
        arbiter.renew(s.id, s.token, now(clock))
    assert ended.value.reason == "SESSION_EVICTED"
    assert ended.value.ending.reason == "lunch"
    with pytest.raises(SessionEnded):
        arbiter.attach(s.id, s.token, now(clock))


def test_expires_exactly_at_deadline_plus_grace(arbiter: Arbiter, clock: FakeClock) -> None:
    """A silent session is kept until TTL + grace and freed at that instant, not before."""
    s = grant(arbiter, clock)
    clock.advance(30 + 5 - 0.001)
    assert arbiter.expire(now(clock)) == []
    clock.advance(0.001)
    expired = arbiter.expire(now(clock))
    assert [e.ending.session.id for e in expired] == [s.id]
    assert expired[0].ending.kind is EndKind.EXPIRED
    assert expired[0].ending.silent_for == pytest.approx(35)
    assert arbiter.in_use == 0


def test_renewed_session_does_not_expire(arbiter: Arbiter, clock: FakeClock) -> None:
    """Renewing every keepalive interval keeps the seat indefinitely."""
    s = grant(arbiter, clock)
    for _ in range(100):
        clock.advance(10)
        arbiter.renew(s.id, s.token, now(clock))
        assert arbiter.expire(now(clock)) == []


def test_dropped_stream_keeps_the_seat_for_the_reattach_grace(
    arbiter: Arbiter, clock: FakeClock
) -> None:
    """After a detach the seat is freed reattach_grace later, not TTL + grace later."""
    s = grant(arbiter, clock)
    arbiter.attach(s.id, s.token, now(clock))
    arbiter.detach(s.id, now(clock))
    clock.advance(10 - 0.001)
    assert arbiter.expire(now(clock)) == []
    clock.advance(0.001)
    assert len(arbiter.expire(now(clock))) == 1


def test_reattach_within_grace_keeps_the_seat(arbiter: Arbiter, clock: FakeClock) -> None:
    """A workstation that reattaches within the grace keeps its session and a full lease."""
    s = grant(arbiter, clock)
    arbiter.detach(s.id, now(clock))
    clock.advance(9)
    again = arbiter.attach(s.id, s.token, now(clock))
    assert again.attached and again.expires_at == clock.monotonic() + 35
    clock.advance(30)
    assert arbiter.expire(now(clock)) == []


def test_detach_never_extends_a_lease(arbiter: Arbiter, clock: FakeClock) -> None:
    """A detach near the end of a lease keeps the earlier expiry."""
    s = grant(arbiter, clock)
    clock.advance(34)
    detached = arbiter.detach(s.id, now(clock))
    assert detached is not None and detached.expires_at == s.expires_at


def test_restore_gives_ttl_plus_restart_grace(arbiter: Arbiter, clock: FakeClock) -> None:
    """After a restart every stored session keeps id and token and gets TTL + restart grace."""
    a = grant(arbiter, clock, "AA")
    b = grant(arbiter, clock, "BB")
    restarted = Arbiter(TERMS)
    later = FakeClock(mono=5.0)
    restarted.restore([a, b], next_id=3, now=now(later))
    assert [(s.id, s.token) for s in restarted.sessions()] == [(a.id, a.token), (b.id, b.token)]
    later.advance(30 + 30 + 5 - 0.001)
    assert restarted.expire(now(later)) == []
    later.advance(0.001)
    assert len(restarted.expire(now(later))) == 2
    assert restarted.next_id == 3


def test_restored_session_reattaches_with_its_token(arbiter: Arbiter, clock: FakeClock) -> None:
    """A client reattaching after a restart keeps its seat and id."""
    a = grant(arbiter, clock)
    restarted = Arbiter(TERMS)
    restarted.restore([a], next_id=2, now=now(clock))
    assert restarted.attach(a.id, a.token, now(clock)).id == a.id


def test_restored_idempotency_key_still_works(arbiter: Arbiter, clock: FakeClock) -> None:
    """A retry after a restart with the same key gets the stored session."""
    a = arbiter.grant(holder(), key="k", token="t", now=now(clock), cap=1).session
    restarted = Arbiter(TERMS)
    restarted.restore([a], next_id=2, now=now(clock))
    assert (
        restarted.grant(holder(), key="k", token="other", now=now(clock), cap=1).session.id == a.id
    )


def test_lowered_cap_evicts_no_one_and_refuses_until_under(
    arbiter: Arbiter, clock: FakeClock
) -> None:
    """With 3 live and a cap lowered to 1, nobody is evicted and grants wait until fewer than 1."""
    sessions = [grant(arbiter, clock, u, cap=3) for u in ("AA", "BB", "CC")]
    assert_refused_unchanged(arbiter, SeatsExhausted, lambda: grant(arbiter, clock, "DD", cap=1))
    assert arbiter.in_use == 3
    arbiter.release(sessions[0].id, sessions[0].token, now(clock))
    assert_refused_unchanged(arbiter, SeatsExhausted, lambda: grant(arbiter, clock, "DD", cap=1))
    for s in sessions[1:]:
        arbiter.release(s.id, s.token, now(clock))
    grant(arbiter, clock, "DD", cap=1)


def test_takeover_evicts_the_chosen_session(arbiter: Arbiter, clock: FakeClock) -> None:
    """At capacity, a takeover evicts the chosen session with its reason and grants the seat."""
    victim = grant(arbiter, clock, "AA", cap=1)
    result = arbiter.grant(
        holder("BB", "PC-2"),
        key="kb",
        token="tb",
        now=now(clock),
        cap=1,
        takeover=Takeover(victim.id, "", TakeoverPolicy.ANYONE),
    )
    ended, granted = result.events
    assert isinstance(ended, Ended) and isinstance(granted, Granted)
    assert (
        ended.ending.session.id,
        ended.ending.by,
        ended.ending.by_claimed,
        ended.ending.reason,
    ) == (victim.id, "BB@PC-2", True, "Connection limit exceeded")
    assert [s.holder.user_code for s in arbiter.sessions()] == ["BB"]


def test_takeover_below_capacity_evicts_no_one(arbiter: Arbiter, clock: FakeClock) -> None:
    """When a seat is free, a takeover request just takes the free seat."""
    other = grant(arbiter, clock, "AA", cap=2)
    result = arbiter.grant(
        holder("BB"),
        key="kb",
        token="tb",
        now=now(clock),
        cap=2,
        takeover=Takeover(other.id, "r", TakeoverPolicy.ANYONE),
    )
    assert len(result.events) == 1 and arbiter.in_use == 2


def test_same_user_policy_refuses_another_users_session(arbiter: Arbiter, clock: FakeClock) -> None:
    """Under "same-user", taking over another user's session is denied and changes nothing."""
    victim = grant(arbiter, clock, "AA", cap=1)
    assert_refused_unchanged(
        arbiter,
        TakeoverDenied,
        lambda: arbiter.grant(
            holder("BB"),
            key="kb",
            token="tb",
            now=now(clock),
            cap=1,
            takeover=Takeover(victim.id, "r", TakeoverPolicy.SAME_USER),
        ),
    )


def test_same_user_policy_allows_own_session(arbiter: Arbiter, clock: FakeClock) -> None:
    """Under "same-user", a user may take over their own other session."""
    victim = grant(arbiter, clock, "AA", cap=1)
    result = arbiter.grant(
        holder("AA", "PC-2"),
        key="k2",
        token="t2",
        now=now(clock),
        cap=1,
        takeover=Takeover(victim.id, "moved desk", TakeoverPolicy.SAME_USER),
    )
    assert result.session.holder.hostname == "PC-2" and arbiter.in_use == 1


def test_admin_only_policy_refuses_every_takeover(arbiter: Arbiter, clock: FakeClock) -> None:
    """Under "admin-only", users cannot take over at all."""
    victim = grant(arbiter, clock, "AA", cap=1)
    assert_refused_unchanged(
        arbiter,
        TakeoverDenied,
        lambda: arbiter.grant(
            holder("AA"),
            key="k2",
            token="t2",
            now=now(clock),
            cap=1,
            takeover=Takeover(victim.id, "r", TakeoverPolicy.ADMIN_ONLY),
        ),
    )


def test_takeover_of_unknown_session_is_target_gone(arbiter: Arbiter, clock: FakeClock) -> None:
    """Taking over a session that does not exist is TakeoverTargetGone and grants nothing."""
    grant(arbiter, clock, "AA", cap=1)
    assert_refused_unchanged(
        arbiter,
        TakeoverTargetGone,
        lambda: arbiter.grant(
            holder("BB"),
            key="kb",
            token="tb",
            now=now(clock),
            cap=1,
            takeover=Takeover(42, "r", TakeoverPolicy.ANYONE),
        ),
    )


def test_takeover_of_an_ended_session_says_gone_not_how_it_ended(
    arbiter: Arbiter, clock: FakeClock
) -> None:
    """A takeover target that was evicted is TakeoverTargetGone, without the ending's reason."""
    gone = grant(arbiter, clock, "AA", cap=2)
    grant(arbiter, clock, "CC", cap=2)
    arbiter.evict(gone.id, reason="private matter", by="admin", now=now(clock))
    grant(arbiter, clock, "DD", cap=2)
    with pytest.raises(TakeoverTargetGone) as refused:
        arbiter.grant(
            holder("BB"),
            key="kb",
            token="tb",
            now=now(clock),
            cap=2,
            takeover=Takeover(gone.id, "r", TakeoverPolicy.ANYONE),
        )
    assert refused.value.reason == "TAKEOVER_TARGET_GONE"
    assert "private matter" not in str(refused.value) and "admin" not in str(refused.value)


def test_resync_forgets_uncommitted_decisions(arbiter: Arbiter, clock: FakeClock) -> None:
    """Resync keeps the stored sessions (with their live leases) and drops the rest."""
    kept = grant(arbiter, clock, "AA")
    arbiter.renew(kept.id, kept.token, now(clock))
    lease = arbiter.get(kept.id).expires_at
    uncommitted = grant(arbiter, clock, "BB")
    arbiter.resync([kept], next_id=2, now=now(clock))
    assert [s.id for s in arbiter.sessions()] == [kept.id]
    assert arbiter.get(kept.id).expires_at == lease
    with pytest.raises(SessionNotFound):
        arbiter.get(uncommitted.id)


def test_a_pardon_moves_every_deadline_by_the_pause(arbiter: Arbiter, clock: FakeClock) -> None:
    """After a pause in which renewals were refused, each session expires that much later
    (and exactly then)."""
    a = grant(arbiter, clock, "AA")
    clock.advance(5)
    b = grant(arbiter, clock, "BB")
    clock.advance(1)
    arbiter.pardon(clock.monotonic(), clock.monotonic() + 60)
    clock.advance(a.expires_at - clock.monotonic() + 60 - 0.001)
    assert arbiter.expire(now(clock)) == []
    clock.advance(0.001)
    assert [e.ending.session.id for e in arbiter.expire(now(clock))] == [a.id]
    clock.advance(b.expires_at + 60 - clock.monotonic())
    assert [e.ending.session.id for e in arbiter.expire(now(clock))] == [b.id]


def test_a_session_renewed_after_the_pause_began_is_held_back_from_its_renewal_on(
    arbiter: Arbiter, clock: FakeClock
) -> None:
    """Between two looks a pause can end and start again: a session granted (or renewed)
    after `since` moves by the time from its renewal to `until`; one granted at `until`
    does not move."""
    a = grant(arbiter, clock, "AA")
    clock.advance(5)
    since = clock.monotonic()
    clock.advance(5)
    b = grant(arbiter, clock, "BB")
    clock.advance(55)
    c = grant(arbiter, clock, "CC")
    arbiter.pardon(since, since + 60)
    assert arbiter.get(a.id).expires_at == a.expires_at + 60
    assert arbiter.get(b.id).expires_at == b.expires_at + 55
    assert arbiter.get(c.id).expires_at == c.expires_at


def test_a_pardon_moves_an_idle_eviction_by_the_pause(arbiter: Arbiter, clock: FakeClock) -> None:
    """A session warned for idleness is evicted the pause later: the activity its
    workstation reported during the pause was refused."""
    a = grant(arbiter, clock, "AA")
    warned = dataclasses.replace(
        arbiter.get(a.id), idle_since=0.0, idle_warned_at=1.0, idle_evict_at=9.0
    )
    arbiter._put(warned)
    arbiter.pardon(clock.monotonic() + 1, clock.monotonic() + 61)
    assert arbiter.get(a.id).idle_evict_at == 69.0


def test_a_renewal_carries_every_field_but_the_lease_and_idle_time(clock: FakeClock) -> None:
    """A renewed session differs only in last seen, renewal, expiry and idle-since."""
    values: dict[str, object] = {
        "id": 7,
        "holder": holder(),
        "key": "k",
        "token": "t",
        "started_at": clock.wall(),
        "last_seen_at": clock.wall(),
        "renewed_at": 1.0,
        "expires_at": 2.0,
        "attached": True,
        "streams": 3,
        "restored": True,
        "idle_since": 4.0,
        "idle_warned_at": 5.0,
        "idle_evict_at": 6.0,
    }
    # Every field is given a value that is not its default: a new one must be added here.
    assert list(values) == [f.name for f in dataclasses.fields(Session)]
    session = Session(**values)  # type: ignore[arg-type]
    clock.advance(60)
    at = now(clock)
    renewed = session.renewed(at, 99.0, 8.0)
    assert renewed == dataclasses.replace(
        session, last_seen_at=at.wall, renewed_at=at.mono, expires_at=99.0, idle_since=8.0
    )
