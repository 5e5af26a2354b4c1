"""The seat table as a pure, synchronous state machine.

Theory of operation
-------------------
The arbiter decides; it never performs. It holds the live sessions in memory and answers
each request with a decision and the events that record it (`Granted`, `Ended`). It does no
I/O, no logging and reads no clock: every method takes `now`, an `Instant` carrying the
monotonic reading (for deadlines) and the wall reading (for display and the journal). The
service persists the events in one LMDB transaction and acknowledges only after the commit;
should a commit fail, it rebuilds the arbiter from the store with `resync`.

A lease is a deadline on the monotonic clock. The reaper frees a seat at `expires_at`, which
is the lease deadline plus `grace` after every renewal, and is pulled in to `now +
reattach_grace` when the session's keepalive stream drops (a crashed workstation comes back
in seconds; a silent network keeps the stream and so the full TTL).

Illegal operations raise a `SeatdError` and change nothing.

Invariants (DESIGN.md section 4, each with a test)
---------------------------------------------------
1. A grant never makes the live sessions exceed the seat cap. A lowered cap evicts no one;
   it refuses grants until the count falls under it.
2. Grants are idempotent per client key: a retry gets the same session and token.
5. A seat is freed only at `deadline + grace`, or `reattach_grace` after its stream dropped.
6. `restore` gives every stored session a fresh deadline of TTL + restart grace; the session
   keeps its id and token.
P. Under the seat policy (`seatd.policy`, a value this table holds and a reload replaces), a
   grant never exceeds a group's `max` or `max_per_user`, never goes to an excluded group,
   and never leaves fewer free seats than the other groups' unused reservations. Every
   refusal names its rule (`PolicyRefused`). A new policy ends no session.
I. Idle reclaim (`reclaim_idle`): a session whose workstation reports it idle past
   `reclaim_after` is warned first, then evicted at the warning's deadline unless activity
   came meanwhile; with `only_when_waiting`, no more sessions than there are waiters.
7. An ended session's token is dead for good: later calls get `SessionEnded` with the reason.
   Only its holder learns the reason: a wrong token gets `InvalidToken` whatever the
   session's state.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from seatd.errors import (
    InvalidArgument,
    InvalidToken,
    PolicyRefused,
    SeatsExhausted,
    SessionEnded,
    SessionNotFound,
    TakeoverDenied,
    TakeoverTargetGone,
)
from seatd.model import (
    DEFAULT_EVICT_REASON,
    ENDINGS_KEPT,
    Ended,
    Ending,
    EndKind,
    Grant,
    Granted,
    Holder,
    Instant,
    Session,
    check_text,
)
from seatd.policy import POLICY_ACTOR, Policy, TakeoverPolicy, Tally

__all__ = [
    "Arbiter",
    "Assessment",
    "IdleStep",
    "LeaseTerms",
    "Renewal",
    "Takeover",
    "TakeoverPolicy",
]


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """Lease timing, in seconds. Bounds are checked by the config (`seatd.config`)."""

    ttl: float = 30.0
    keepalive_interval: float = 10.0
    grace: float = 5.0
    reattach_grace: float = 10.0
    restart_grace: float = 30.0


@dataclass(frozen=True, slots=True)
class IdleStep:
    """What idle reclaim decided at one tick: sessions to warn (with the monotonic instant of
    their eviction), warnings withdrawn (nobody waits any more), and evictions."""

    warned: tuple[Session, ...] = ()
    withdrawn: tuple[Session, ...] = ()
    evicted: tuple[Ended, ...] = ()


class Renewal(NamedTuple):
    """A ping's renewal: the renewed session, and whether activity it reported withdrew the
    session's idle warning (the workstation is told so). A tuple: one per ping."""

    session: Session
    withdrawn: bool


@dataclass(frozen=True, slots=True)
class Assessment:
    """A policy counted against the live sessions (`Arbiter.assess`)."""

    in_use: dict[str, int]
    unused_reserve: int
    # Live sessions whose holder the policy would refuse a seat now, and the rule.
    breaches: tuple[tuple[Session, PolicyRefused], ...]


@dataclass(frozen=True, slots=True)
class Takeover:
    """A request to evict `session_id` to make room, with the reason shown to its user."""

    session_id: int
    reason: str
    policy: TakeoverPolicy


class Arbiter:
    def __init__(self, terms: LeaseTerms, next_id: int = 1, policy: Policy | None = None) -> None:
        self.terms = terms
        self.next_id = next_id
        self.policy = policy or Policy()
        self._sessions: dict[int, Session] = {}
        self._by_key: dict[str, int] = {}
        self._endings: OrderedDict[int, Ending] = OrderedDict()
        self._tally = Tally(self.policy)

    def set_policy(self, policy: Policy) -> None:
        """A reloaded policy: holds for the next decision; no live session is ended."""
        self.policy = policy
        self._recount()

    def _recount(self) -> None:
        self._tally = self._count(self.policy)

    def _count(self, policy: Policy) -> Tally:
        tally = Tally(policy)
        for s in self._sessions.values():
            tally.add(policy.group_of(s.holder), s.holder.user_code)
        return tally

    # -- queries ---------------------------------------------------------------------------

    @property
    def in_use(self) -> int:
        return len(self._sessions)

    def sessions(self) -> list[Session]:
        """Live sessions, oldest first."""
        return sorted(self._sessions.values(), key=_by_id)

    def get(self, session_id: int) -> Session:
        """The live session, or `SessionEnded` / `SessionNotFound`."""
        session = self._sessions.get(session_id)
        if session is not None:
            return session
        ending = self._endings.get(session_id)
        if ending is not None:
            raise SessionEnded(ending)
        raise SessionNotFound(session_id)

    def ending(self, session_id: int) -> Ending | None:
        return self._endings.get(session_id)

    def group_counts(self) -> dict[str, int]:
        """Live sessions per policy group (groups with none are left out)."""
        return dict(self._tally.by_group)

    def unused_reserve(self) -> int:
        """Seats reserved by the policy's groups and not in use by them."""
        return self._tally.unused

    def assess(self, policy: Policy, cap: int | None) -> Assessment:
        """`policy` counted against the live sessions (it need not be the one in force):
        seats per group, reserved seats unused, and each session whose holder it would
        refuse a seat now (with that session's own seat given back first). Decides nothing."""
        tally = self._count(policy)
        breaches = []
        for s in self.sessions():
            refused = tally.refusal(
                s.holder,
                cap=cap,
                in_use=self.in_use,
                freed=((policy.group_of(s.holder), s.holder.user_code),),
            )
            if refused is not None:
                breaches.append((s, refused))
        return Assessment(dict(tally.by_group), tally.unused, tuple(breaches))

    def policy_refusal(
        self, holder: Holder, cap: int | None, *, policy: Policy | None = None
    ) -> PolicyRefused | None:
        """The rule that would refuse `holder` a seat now (under `policy`, by default the one
        in force), or None; decides nothing."""
        if policy is None or policy is self.policy:
            return self._tally.refusal(holder, cap=cap, in_use=self.in_use)
        return self._count(policy).refusal(holder, cap=cap, in_use=self.in_use)

    def holds_key(self, key: str) -> bool:
        """Whether a live session already answers this idempotency key (a retry adds nothing)."""
        return key.strip() in self._by_key

    # -- decisions -------------------------------------------------------------------------

    def grant(
        self,
        holder: Holder,
        *,
        key: str,
        token: str,
        now: Instant,
        cap: int | None,
        takeover: Takeover | None = None,
    ) -> Grant:
        """Grant a seat to `holder`, or return the session this `key` already holds."""
        key = check_text("idempotency_key", key)
        existing = self._by_key.get(key)
        if existing is not None:
            session = self._sessions[existing]
            if session.holder.user_code != holder.user_code:
                raise InvalidArgument(
                    "idempotency_key", "already used by another user; use a fresh random key"
                )
            return Grant(session)

        events: list[Granted | Ended] = []
        victim: Session | None = None
        if cap is not None and self.in_use >= cap and takeover is not None:
            victim = self._takeover_victim(holder, takeover)
        # The policy speaks first: a group at its max learns that, not that the seats are
        # full, since a free seat would not be theirs either.
        freed = (
            ()
            if victim is None
            else ((self.policy.group_of(victim.holder), victim.holder.user_code),)
        )
        refused = self._tally.refusal(holder, cap=cap, in_use=self.in_use, freed=freed)
        if refused is not None:
            raise refused
        if cap is not None and self.in_use >= cap:
            # Evicting one seat must bring us under the cap; a lowered cap may need more.
            if victim is None or takeover is None or self.in_use - 1 >= cap:
                raise SeatsExhausted(
                    cap, self.in_use, self.sessions(), self.terms.keepalive_interval
                )
            # Who takes over is whatever the unauthenticated workstation said it is.
            by = f"{holder.user_code}@{holder.hostname}" if holder.hostname else holder.user_code
            reason = check_text("reason", takeover.reason, required=False) or DEFAULT_EVICT_REASON
            ending = self._end(victim, EndKind.EVICTED, reason, by, now, by_claimed=True)
            events.append(Ended(ending))

        session = Session(
            id=self.next_id,
            holder=holder,
            key=key,
            token=token,
            started_at=now.wall,
            last_seen_at=now.wall,
            renewed_at=now.mono,
            expires_at=now.mono + self.terms.ttl + self.terms.grace,
        )
        self.next_id += 1
        self._sessions[session.id] = session
        self._by_key[key] = session.id
        self._tally.add(self.policy.group_of(holder), holder.user_code)
        events.append(Granted(session))
        return Grant(session, tuple(events))

    def _takeover_victim(self, holder: Holder, takeover: Takeover) -> Session:
        if takeover.policy is TakeoverPolicy.ADMIN_ONLY:
            raise TakeoverDenied(
                takeover.policy.value, "only an administrator may disconnect a session"
            )
        victim = self._sessions.get(takeover.session_id)
        if victim is None:
            raise TakeoverTargetGone(takeover.session_id)
        if (
            takeover.policy is TakeoverPolicy.SAME_USER
            and victim.holder.user_code != holder.user_code
        ):
            raise TakeoverDenied(
                takeover.policy.value,
                f"session {victim.id} belongs to another user; only your own sessions",
            )
        return victim

    def attach(self, session_id: int, token: str, now: Instant) -> Session:
        """A keepalive stream attached: renew the lease and mark the session attached."""
        session = self.owned(session_id, token)
        renewed = self._renewed(session, now)
        return self._put(
            replace(renewed, attached=True, streams=session.streams + 1, restored=False)
        )

    def renew(
        self, session_id: int, token: str, now: Instant, idle: float | None = None
    ) -> Renewal:
        """A ping: the lease runs TTL (+ grace) from now. `idle`: seconds since the user was
        last active, as the workstation reports it (None: it reports nothing); activity after
        an idle warning withdraws it, and the answer says so."""
        session = self.owned(session_id, token)
        if idle is None:
            return Renewal(self._put(self._renewed(session, now)), False)
        idle_since = now.mono - min(max(idle, 0.0), now.mono)
        warned = session.idle_warned_at
        withdrawn = warned is not None and idle_since > warned
        renewed = session.renewed(now, self._lease_end(now), idle_since)
        if withdrawn:
            renewed = replace(renewed, idle_warned_at=None, idle_evict_at=None)
        return Renewal(self._put(renewed), withdrawn)

    def idle_for(self, session: Session, now: float) -> float | None:
        """Seconds the session's user has been idle, if its workstation reports it."""
        return None if session.idle_since is None else max(0.0, now - session.idle_since)

    def reclaim_idle(self, now: Instant, waiting: int) -> IdleStep:
        """Warn the sessions idle past `reclaim_after` and evict those warned whose deadline
        came with no activity; with `only_when_waiting`, only as many as `waiting` (longest
        idle first), and withdraw the warnings once nobody waits."""
        idle = self.policy.idle
        if not idle.enabled:
            return IdleStep()
        limit = waiting if idle.only_when_waiting else None
        idle_ones = sorted(
            (s for s in self._sessions.values() if s.idle_since is not None),
            key=lambda s: (s.idle_since or 0.0, s.id),
        )
        warned: list[Session] = []
        withdrawn: list[Session] = []
        evicted: list[Ended] = []
        pending = 0
        for s in idle_ones:
            idle_for = now.mono - (s.idle_since or 0.0)
            taken = pending + len(evicted)
            if s.idle_evict_at is not None:
                if limit is not None and taken >= limit:
                    withdrawn.append(self._put(replace(s, idle_warned_at=None, idle_evict_at=None)))
                elif s.idle_evict_at <= now.mono:
                    reason = _idle_reason(idle_for, waiting, idle.reclaim_after)
                    evicted.append(Ended(self._end(s, EndKind.EVICTED, reason, POLICY_ACTOR, now)))
                else:
                    pending += 1
            elif idle_for >= idle.reclaim_after and (limit is None or taken < limit):
                evict_at = now.mono + idle.warn_before
                warned.append(
                    self._put(replace(s, idle_warned_at=now.mono, idle_evict_at=evict_at))
                )
                pending += 1
        return IdleStep(tuple(warned), tuple(withdrawn), tuple(evicted))

    def detach(self, session_id: int, now: Instant) -> Session | None:
        """The session's stream dropped: keep the seat only for the reattach grace."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        expires_at = min(session.expires_at, now.mono + self.terms.reattach_grace)
        return self._put(replace(session, attached=False, expires_at=expires_at))

    def release(self, session_id: int, token: str, now: Instant) -> Ended | None:
        """Give the seat back. Idempotent: an already ended session returns None to its
        holder (or to anyone once its ending is forgotten); a wrong token is refused."""
        if session_id not in self._sessions:
            ending = self._endings.get(session_id)
            if ending is not None:
                _check_token(session_id, ending.session.token, token)
                return None
            if 0 < session_id < self.next_id:
                return None
            raise SessionNotFound(session_id)
        session = self.owned(session_id, token)
        return Ended(
            self._end(session, EndKind.RELEASED, "released", session.holder.user_code, now)
        )

    def evict(
        self, session_id: int, *, reason: str, by: str, now: Instant, claimed: str = ""
    ) -> Ended:
        """End someone else's session on purpose; always with a reason and who did it
        (`claimed`: the user name the admin's client gave, unproven)."""
        reason = check_text("reason", reason, required=False) or DEFAULT_EVICT_REASON
        by = check_text("by", by)
        session = self.get(session_id)
        return Ended(self._end(session, EndKind.EVICTED, reason, by, now, claimed=claimed))

    def expire(self, now: Instant) -> list[Ended]:
        """Free every seat whose `expires_at` has come."""
        # One pass over the table and a sort of only what is due: the reaper runs every tick
        # and the table may hold tens of thousands of sessions, few of them due.
        due = sorted((s for s in self._sessions.values() if s.expires_at <= now.mono), key=_by_id)
        return [
            Ended(
                self._end(
                    s,
                    EndKind.EXPIRED,
                    "no keepalive within the lease",
                    "seatd",
                    now,
                    silent_for=now.mono - s.renewed_at,
                )
            )
            for s in due
        ]

    def pardon(self, since: float, until: float) -> None:
        """Move each live session's deadline later by the time this instance held it back:
        from `since` to `until` it refused renewals (a cluster leader whose etcd lease was
        unproven, possibly more than once in between), so the workstations' silence was its
        own, not theirs. A session renewed after `since` is held back only from its renewal
        on (a pause can end and start again between two looks); its idle eviction moves too,
        the activity reported meanwhile having been refused."""
        for session in list(self._sessions.values()):
            held_back = until - max(since, session.renewed_at)
            if held_back <= 0:
                continue
            evict_at = session.idle_evict_at
            self._put(
                replace(
                    session,
                    expires_at=session.expires_at + held_back,
                    idle_evict_at=None if evict_at is None else evict_at + held_back,
                )
            )

    # -- restart and recovery ---------------------------------------------------------------

    def restore(
        self,
        stored: Iterable[Session],
        next_id: int,
        now: Instant,
        endings: Iterable[Ending] = (),
    ) -> None:
        """Load the sessions found in the store after a restart, each with a fresh deadline,
        and the endings kept there (oldest first), so a token ended while the daemon was down
        or away still learns why."""
        for ending in endings:
            self._endings[ending.session.id] = ending
        while len(self._endings) > ENDINGS_KEPT:
            self._endings.popitem(last=False)
        self._load([self._restarted(s, now) for s in stored], next_id)

    def resync(self, stored: Iterable[Session], next_id: int, now: Instant) -> None:
        """Make the table match the store again after a failed commit.

        Sessions still live keep their in-memory lease; any the store has that memory lost
        get a restart deadline. Decisions that did not commit are forgotten.
        """
        known = self._sessions
        self._load([known.get(s.id) or self._restarted(s, now) for s in stored], next_id)

    def _restarted(self, session: Session, now: Instant) -> Session:
        t = self.terms
        return replace(
            session,
            attached=False,
            restored=True,
            renewed_at=now.mono,
            expires_at=now.mono + t.ttl + t.restart_grace + t.grace,
        )

    def _load(self, sessions: list[Session], next_id: int) -> None:
        self._sessions = {s.id: s for s in sessions}
        self._by_key = {s.key: s.id for s in sessions}
        for sid in self._sessions:
            self._endings.pop(sid, None)
        self.next_id = max([next_id, *(s.id + 1 for s in sessions)])
        self._recount()

    # -- internals ---------------------------------------------------------------------------

    def owned(self, session_id: int, token: str) -> Session:
        """The live session `token` proves; an ended one's reason only to its holder."""
        session = self._sessions.get(session_id)
        if session is None:
            ending = self._endings.get(session_id)
            if ending is not None:
                _check_token(session_id, ending.session.token, token)
            session = self.get(session_id)
        _check_token(session_id, session.token, token)
        return session

    def _renewed(self, session: Session, now: Instant) -> Session:
        return session.renewed(now, self._lease_end(now), session.idle_since)

    def _lease_end(self, now: Instant) -> float:
        return now.mono + self.terms.ttl + self.terms.grace

    def _put(self, session: Session) -> Session:
        self._sessions[session.id] = session
        return session

    def _end(
        self,
        session: Session,
        kind: EndKind,
        reason: str,
        by: str,
        now: Instant,
        silent_for: float = 0.0,
        *,
        claimed: str = "",
        by_claimed: bool = False,
    ) -> Ending:
        ending = Ending(session, kind, reason, by, now.wall, silent_for, claimed, by_claimed)
        del self._sessions[session.id]
        self._by_key.pop(session.key, None)
        self._tally.remove(self.policy.group_of(session.holder), session.holder.user_code)
        self._endings[session.id] = ending
        if len(self._endings) > ENDINGS_KEPT:
            self._endings.popitem(last=False)
        return ending


def _by_id(session: Session) -> int:
    return session.id


def _idle_reason(idle_for: float, waiting: int, reclaim_after: float) -> str:
    minutes = f"{idle_for / 60:.0f} min" if idle_for >= 60 else f"{idle_for:.0f} s"
    if waiting:
        return f"idle for {minutes}; the seat went to a waiting user"
    return f"idle for {minutes}; idle seats are reclaimed after {reclaim_after / 60:g} min"


def _check_token(session_id: int, expected: str, token: str) -> None:
    if not hmac.compare_digest(expected.encode(), token.encode()):
        raise InvalidToken(session_id)
