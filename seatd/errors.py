"""Domain errors, defined once.

Each carries a stable `reason` (a machine code a client can translate) and an English
message for people. The transport maps each class to a gRPC status through one table
(`seatd.transport.status`); anything not listed there is INTERNAL and logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from seatclient.contract import SESSION_ENDED_PREFIX, Meta, Reason

if TYPE_CHECKING:
    from seatd.entitlement import LicenceView
    from seatd.model import Ending, Session


class SeatdError(Exception):
    reason: ClassVar[str] = "SEATD_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def metadata(self) -> dict[str, str]:
        return {}


class InvalidArgument(SeatdError):
    """A request field is missing or malformed (gRPC INVALID_ARGUMENT)."""

    reason = Reason.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.FIELD: self.field}


class SeatsExhausted(SeatdError):
    """Every seat the licence allows is in use (gRPC RESOURCE_EXHAUSTED)."""

    reason = Reason.SEATS_EXHAUSTED

    def __init__(
        self,
        cap: int,
        in_use: int,
        sessions: Sequence[Session],
        retry_after: float,
        queue_position: int = 0,
    ) -> None:
        super().__init__(
            f"all {cap} connections allowed by the licence are in use ({in_use} open): "
            "try again later, order one more connection, or disconnect one of the sessions"
        )
        self.cap = cap
        self.in_use = in_use
        self.sessions = tuple(sessions)
        self.retry_after = retry_after
        self.queue_position = queue_position
        # The licence in force (with where to order one more connection), set by the service,
        # so the refusal offers every way out without another call.
        self.licence: LicenceView | None = None

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.CAP: str(self.cap), Meta.IN_USE: str(self.in_use)}


class LimitExceeded(SeatdError):
    """A bound that keeps one caller from exhausting the daemon was reached; nothing was
    changed (gRPC RESOURCE_EXHAUSTED). `reason` says which bound: QUEUE_FULL, PING_FLOOD,
    KEEPALIVE_BACKLOG, TOO_MANY_CALLS."""

    def __init__(self, reason: str, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self._reason = reason
        self.retry_after = retry_after

    @property
    def reason(self) -> str:  # type: ignore[override]
        return self._reason


class SessionNotFound(SeatdError):
    """No such session (gRPC NOT_FOUND)."""

    reason = Reason.SESSION_NOT_FOUND

    def __init__(self, session_id: int, message: str | None = None) -> None:
        super().__init__(message or f"session {session_id} does not exist")
        self.session_id = session_id

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.SESSION_ID: str(self.session_id)}


class SessionEnded(SessionNotFound):
    """The session existed and has ended; its token is dead for good (gRPC NOT_FOUND)."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.session.id, ending.describe())
        self.ending = ending

    @property
    def reason(self) -> str:  # type: ignore[override]
        return f"{SESSION_ENDED_PREFIX}{self.ending.kind.name}"

    @property
    def metadata(self) -> dict[str, str]:
        return {
            Meta.SESSION_ID: str(self.session_id),
            Meta.BY: self.ending.by,
            Meta.ENDED_REASON: self.ending.reason,
        }


class TakeoverTargetGone(SessionNotFound):
    """The session a takeover names is no longer live (gRPC NOT_FOUND). Says nothing of how
    it ended: that is for its holder only."""

    reason = Reason.TAKEOVER_TARGET_GONE

    def __init__(self, session_id: int) -> None:
        super().__init__(
            session_id,
            f"session {session_id} is no longer connected (it ended while you were choosing): "
            "no seat was taken; list the sessions again, a seat may be free now",
        )


class InvalidToken(SeatdError):
    """The lease token does not match the session (gRPC UNAUTHENTICATED)."""

    reason = Reason.INVALID_LEASE_TOKEN

    def __init__(self, session_id: int) -> None:
        super().__init__(f"the lease token does not match session {session_id}")
        self.session_id = session_id

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.SESSION_ID: str(self.session_id)}


class Superseded(SeatdError):
    """A second attach of the session replaced this keepalive stream (gRPC ABORTED): the
    other stream holds the seat now, and this one must not reattach into a fight with it."""

    reason = Reason.STREAM_SUPERSEDED

    def __init__(self, session_id: int) -> None:
        super().__init__(
            f"session {session_id} was attached again from another stream, which now keeps "
            "it alive: this one ends and should not reattach"
        )
        self.session_id = session_id

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.SESSION_ID: str(self.session_id)}


class TakeoverDenied(SeatdError):
    """The takeover policy forbids this eviction (gRPC PERMISSION_DENIED)."""

    reason = Reason.TAKEOVER_DENIED

    def __init__(self, policy: str, detail: str) -> None:
        super().__init__(f"taking over a seat is not allowed here (policy {policy!r}): {detail}")
        self.policy = policy

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.POLICY: self.policy}


class PolicyRefused(SeatdError):
    """A rule of the site's seat policy refuses the seat (gRPC RESOURCE_EXHAUSTED; an
    excluded group PERMISSION_DENIED): `rule` is the config key that decided (max, reserve,
    max_per_user, exclude), `group` the group it belongs to. `waitable`: a seat may come
    free for this holder (a waiting request stays in the queue)."""

    def __init__(
        self, rule: str, reason: str, group: str, message: str, *, waitable: bool = True
    ) -> None:
        super().__init__(message)
        self.rule = rule
        self._reason = reason
        self.group = group
        self.waitable = waitable

    @property
    def reason(self) -> str:  # type: ignore[override]
        return self._reason

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.POLICY: self.rule, Meta.GROUP: self.group}


class PolicyExcluded(PolicyRefused):
    """The holder's group may take no seat at all (gRPC PERMISSION_DENIED)."""

    def __init__(self, reason: str, group: str, message: str) -> None:
        super().__init__("exclude", reason, group, message, waitable=False)


class Unavailable(SeatdError):
    """The daemon cannot take the change now; nothing was changed (gRPC UNAVAILABLE)."""

    reason = Reason.UNAVAILABLE


class StorageFailed(Unavailable):
    """The write transaction did not commit; nothing was changed (gRPC UNAVAILABLE)."""

    reason = Reason.STORAGE_FAILED

    def __init__(
        self, cause: str, advice: str = "Ask the administrator to check the server's disk"
    ) -> None:
        super().__init__(
            f"the daemon could not save the change ({cause}); nothing was changed. "
            f"{advice}, then retry."
        )


class Fenced(StorageFailed):
    """In cluster mode, a write by an instance that is no longer the leader: etcd refused
    the whole transaction at its fence compare, so nothing was changed (gRPC UNAVAILABLE)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"this seatd instance is no longer the cluster's leader: {detail}",
            "Connect to the current leader (any instance answers with where it is)",
        )


class RateLimited(SeatdError):
    """Too many refused or denied calls from one peer (gRPC RESOURCE_EXHAUSTED, retry hint)."""

    reason = Reason.RATE_LIMITED

    def __init__(self, who: str, retry_after: float) -> None:
        super().__init__(
            f"too many refused calls from {who}: retry in {max(retry_after, 0.1):.1f} s"
        )
        self.retry_after = retry_after


class StoreFull(Unavailable):
    """The store is past its grant limit: seats in use go on, nothing new is granted and
    refusals are no longer recorded (gRPC UNAVAILABLE, with a retry hint)."""

    reason = Reason.STORE_FULL

    def __init__(self, used: str, advice: str, retry_after: float) -> None:
        super().__init__(
            f"the seat server's storage is full ({used}), so it grants no new seat; seats "
            f"in use keep working. The administrator should {advice}."
        )
        self.retry_after = retry_after


class Draining(Unavailable):
    """The daemon is shutting down and grants nothing new (gRPC UNAVAILABLE)."""

    reason = Reason.DRAINING

    def __init__(self, retry_after: float = 5.0) -> None:
        super().__init__("the seat server is restarting; retry in a few seconds")
        self.retry_after = retry_after


class NotLeader(Unavailable):
    """Cluster mode: this instance does not arbitrate now (a standby, or a leader that could
    not renew its etcd lease in time); `leader` is where the leader is, "" while unknown."""

    reason = Reason.NOT_LEADER

    def __init__(self, leader: str = "", name: str = "", why: str = "", admin: str = "") -> None:
        where = (
            f"the leader is {name} at {leader}: connect there"
            if leader
            else "no leader is known yet: retry in a moment"
        )
        super().__init__(f"this seatd instance is not the cluster's leader{why}; {where}")
        self.leader = leader
        self.name = name
        # The leader's remote admin listener ("" when it has none): where seatctl follows.
        self.admin = admin

    @property
    def metadata(self) -> dict[str, str]:
        return {
            Meta.LEADER: self.leader,
            Meta.LEADER_NAME: self.name,
            Meta.LEADER_ADMIN: self.admin,
        }


class StateError(Exception):
    """The state directory cannot be used (at startup; not a gRPC error)."""


RESTORE_ADVICE = (
    "nothing was served and nothing was changed: restore the last good backup with "
    "`seatd restore BACKUP` (check a backup first with `seatd restore --check BACKUP`)"
)


class StoreDamaged(StateError):
    """The seat table is damaged or missing: it is never served, and never replaced by a
    fresh one, so the site's identity, sessions and journal are not lost silently."""


class DamagedRecord(StoreDamaged, SeatdError):
    """One stored record does not decode; the message names its database and key. Before
    serving it refuses the start; met later by an admin read, it is that call's DATA_LOSS."""

    reason = Reason.RECORD_DAMAGED

    def __init__(self, db: str, key: str, problem: str) -> None:
        super().__init__(f"record {key} in database {db!r} {problem}")
        self.db = db
        self.key = key

    @property
    def metadata(self) -> dict[str, str]:
        return {"database": self.db, "key": self.key}


class ConfigError(Exception):
    """A configuration value is out of bounds; the message names the key."""


class LicenceRejected(SeatdError):
    """A licence file that cannot be installed; the licence in force stays (INVALID_ARGUMENT)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self._reason = reason

    @property
    def reason(self) -> str:  # type: ignore[override]
        return self._reason


class LicenceRefusesGrant(SeatdError):
    """The licence in force allows no new grant: expired past its grace (FAILED_PRECONDITION)."""

    reason = Reason.LICENCE_EXPIRED


class SeatsNotPurchased(SeatdError):
    """Active seats cannot go above the purchased seats (FAILED_PRECONDITION)."""

    reason = Reason.SEATS_NOT_PURCHASED


class NotAllowed(SeatdError):
    """The caller's role does not allow this call (PERMISSION_DENIED)."""

    reason = Reason.PERMISSION_DENIED

    def __init__(self, message: str, needed: str = "") -> None:
        super().__init__(message)
        self.needed = needed

    @property
    def metadata(self) -> dict[str, str]:
        return {Meta.NEEDED_ROLE: self.needed} if self.needed else {}


class CloudFailed(Unavailable):
    """A sync or order with the vendor's cloud did not succeed; nothing changed (UNAVAILABLE)."""

    reason = Reason.CLOUD_SYNC_FAILED


class Unauthenticated(SeatdError):
    """The caller did not prove who it is (gRPC UNAUTHENTICATED)."""

    reason = Reason.UNAUTHENTICATED
