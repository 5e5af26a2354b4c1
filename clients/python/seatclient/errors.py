"""Typed errors, each with a message a person can read.

Every reason the daemon sends (`seatclient.contract.Reason`) decodes into its own class
through one table, `DECODERS`; `tests/integration/test_error_contract.py` sends every error
the daemon can raise through the daemon's encoder and this decoder.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from seatclient.contract import DETAIL_KEY, LICENCE_PREFIX, Meta, Reason
from seatclient.events import SessionInfo
from seatclient.v1 import types_pb2


class SeatError(Exception):
    """Base of every error the library raises.

    `code` is the daemon's stable machine reason (`seatclient.contract.Reason`), or the
    class's own code (the class attribute `code`) when the daemon gave none or the library
    raised the error itself; `metadata` the key/value details the daemon sent
    (`contract.Meta`). `str(error)` is English for people.
    """

    code = "SEAT_ERROR"

    def __init__(
        self, message: str, *, code: str = "", metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code or type(self).code
        self.metadata = dict(metadata or {})


class SeatsExhausted(SeatError):
    """Every connection the licence allows is in use.

    The application can offer three ways out: try again later (`retry_after`, or
    `acquire(..., wait=...)`), order one more connection (`order_url`, and the whole
    `licence` summary), or disconnect one of `sessions`
    (`acquire(..., evict_session=ID, reason=...)`).

    `sessions` holds the oldest of the `in_use` sessions, as many as the daemon lists (at
    most 50, none when it is set to disclose only the count); `unlisted` is how many more
    there are. What each session shows (IP or not) is the daemon's `refusal_disclosure`.
    """

    code = Reason.SEATS_EXHAUSTED

    def __init__(
        self,
        message: str,
        *,
        cap: int,
        in_use: int,
        sessions: Sequence[SessionInfo],
        retry_after: float,
        order_url: str = "",
        queue_position: int = 0,
        licence: types_pb2.LicenceSummary | None = None,
    ) -> None:
        super().__init__(message)
        self.cap = cap
        self.in_use = in_use
        self.sessions = tuple(sessions)
        self.retry_after = retry_after
        self.order_url = order_url
        self.queue_position = queue_position
        self.licence = licence if licence is not None else types_pb2.LicenceSummary()

    @property
    def unlisted(self) -> int:
        """Sessions in use that the refusal does not list."""
        return max(0, self.in_use - len(self.sessions))


class Evicted(SeatError):
    """The session was disconnected on purpose: `reason` is the text the person or policy
    that did it gave (for the user to read), `by` who did it (an admin identity, or
    `USER@COMPUTER` for a takeover)."""

    code = Reason.SESSION_EVICTED

    def __init__(self, message: str, *, reason: str, by: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.by = by

    @property
    def evict_reason(self) -> str:
        """Deprecated: use `reason`."""
        warnings.warn("Evicted.evict_reason is deprecated: use .reason", DeprecationWarning, 2)
        return self.reason


class LeaseLost(SeatError):
    """The daemon no longer holds this session's seat (expired, released, unknown, or the
    lease token does not match)."""

    code = "LEASE_LOST"


class Superseded(SeatError):
    """Another keepalive stream attached to this session (another instance of this
    application holding the same session and token): this one stops, it does not fight."""

    code = Reason.STREAM_SUPERSEDED


class DaemonUnavailable(SeatError):
    """The seat server cannot be reached, or cannot take the change now (restarting,
    storage failing); the call may succeed later.

    `target` is the address the library tried; `cause` the underlying text (grpc's, or the
    daemon's), for a log; `str(error)` says it for people.
    """

    code = Reason.UNAVAILABLE

    def __init__(self, message: str, *, target: str = "", cause: str = "", code: str = "") -> None:
        super().__init__(message, code=code)
        self.target = target
        self.cause = cause


class TakeoverTargetGone(SeatError):
    """The session chosen for a takeover (`acquire(evict_session=ID)`) is no longer there:
    it logged out or ended while the user was choosing. No seat was taken: list the sessions
    again (or simply retry the acquire, a seat may be free now). `session_id` is the id asked
    for."""

    code = Reason.TAKEOVER_TARGET_GONE

    def __init__(self, message: str, *, session_id: int) -> None:
        super().__init__(message, metadata={Meta.SESSION_ID: str(session_id)})
        self.session_id = session_id


class AcquireCancelled(SeatError):
    """The application cancelled the acquire (`acquire(cancel=...)`): no seat was taken, and
    a queued request has left the queue."""

    code = "ACQUIRE_CANCELLED"


class NotLeader(DaemonUnavailable):
    """Cluster mode: the instance asked is not the leader; `leader` is the leader's address
    ("" while none is known), `admin` its remote admin listener ("" when it has none). A
    client with several targets goes there by itself."""

    code = Reason.NOT_LEADER

    def __init__(
        self,
        message: str,
        *,
        leader: str = "",
        name: str = "",
        admin: str = "",
        target: str = "",
        cause: str = "",
    ) -> None:
        super().__init__(message, target=target, cause=cause)
        self.metadata = {Meta.LEADER: leader, Meta.LEADER_NAME: name, Meta.LEADER_ADMIN: admin}
        self.leader = leader
        self.name = name
        self.admin = admin


class ServerBusy(SeatError):
    """The daemon refused this call for now, to protect itself or its store; retry after
    `retry_after` seconds (0 when it gave no hint)."""

    code = "SERVER_BUSY"

    def __init__(self, message: str, *, retry_after: float = 0.0, code: str = "") -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class RateLimited(ServerBusy):
    """Too many refused or denied calls from this address."""

    code = Reason.RATE_LIMITED


class QueueFull(ServerBusy):
    """The daemon's wait queue is full (in total, or for this address)."""

    code = Reason.QUEUE_FULL


class LimitExceeded(ServerBusy):
    """Another bound on what one caller may make the daemon hold (`code` says which:
    PING_FLOOD, KEEPALIVE_BACKLOG, TOO_MANY_CALLS)."""

    code = "LIMIT_EXCEEDED"


class StoreFull(ServerBusy):
    """The daemon's storage is full: seats in use keep working, no new one is granted until
    the administrator makes room."""

    code = Reason.STORE_FULL


class LicenceInvalid(SeatError):
    """The licence does not allow new connections (expired, or not valid)."""

    code = "LICENCE_INVALID"


class TakeoverDenied(SeatError):
    """The server's policy does not allow disconnecting that session."""

    code = Reason.TAKEOVER_DENIED

    def __init__(self, message: str, *, policy: str = "") -> None:
        super().__init__(message)
        self.policy = policy


class PolicyRefused(SeatError):
    """The site's seat policy refused the seat; `rule` names the rule that decided
    (`max`, `reserve`, `max_per_user`, `exclude`) and `group` the group it belongs to, so
    the application can translate `code` (POLICY_MAX, POLICY_RESERVED, POLICY_PER_USER,
    POLICY_EXCLUDED). Except for an excluded group, waiting (`acquire(..., wait=...)`) may
    get a seat once one comes free for this user."""

    reason = "POLICY_REFUSED"

    def __init__(self, message: str, *, code: str, rule: str, group: str) -> None:
        super().__init__(message, code=code, metadata={Meta.POLICY: rule, Meta.GROUP: group})
        self.rule = rule
        self.group = group


class InvalidRequest(SeatError):
    """The daemon refused a malformed request; this is a bug in the caller. `field` names
    the request's proto field at fault (empty when the library refused it itself)."""

    code = Reason.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class AdminRefused(SeatError):
    """An administration call was refused (admin API only): `code` says why
    (PERMISSION_DENIED with the `needed_role`, UNAUTHENTICATED, SEATS_NOT_PURCHASED,
    CLOUD_SYNC_FAILED, RECORD_DAMAGED)."""

    code = "ADMIN_REFUSED"


Decoder = Callable[[str, types_pb2.ErrorDetail, str], SeatError]


def detail_of(exc: grpc.RpcError) -> types_pb2.ErrorDetail:
    trailers: Any = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailers or ():
        if key == DETAIL_KEY and isinstance(value, bytes):
            return types_pb2.ErrorDetail.FromString(value)
    return types_pb2.ErrorDetail()


def _seconds(detail: types_pb2.ErrorDetail) -> float:
    return detail.retry_after.ToTimedelta().total_seconds()


def _exhausted(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
    return SeatsExhausted(
        message,
        cap=detail.seat_cap,
        in_use=detail.in_use,
        sessions=[SessionInfo.from_pb(s) for s in detail.sessions],
        retry_after=_seconds(detail),
        order_url=detail.licence.order_url,
        queue_position=detail.queue_position,
        licence=detail.licence,
    )


def _busy(cls: type[ServerBusy]) -> Decoder:
    def decode(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
        wait = _seconds(detail)
        hint = f"; retry in {wait:.0f} s" if wait >= 1 and "retry in" not in message else ""
        return cls(f"{message}{hint}", retry_after=wait, code=detail.reason)

    return decode


def _unavailable(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
    return DaemonUnavailable(
        f"the seat server at {target} cannot take the request now: {message}",
        target=target,
        cause=message,
        code=detail.reason,
    )


def _gone(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
    return TakeoverTargetGone(message, session_id=int(detail.metadata.get(Meta.SESSION_ID, 0)))


# What grpc says when it cannot reach a server -> what to tell a person.
_UNREACHABLE = (
    ("connection refused", "nothing is listening there (is seatd running?)"),
    ("dns resolution failed", "the server name does not resolve"),
    ("name resolution", "the server name does not resolve"),
    ("no route to host", "no route to that host"),
    ("network is unreachable", "the network is unreachable"),
    ("handshake", "the TLS handshake failed (check the certificates)"),
    ("ssl", "the TLS handshake failed (check the certificates)"),
    ("timed out", "the connection timed out"),
    ("deadline exceeded", "no answer in time"),
)


def unreachable(target: str, code: grpc.StatusCode, cause: str, timeout: float = 0.0) -> SeatError:
    """DaemonUnavailable for a call grpc could not complete, in words a person can act on."""
    lowered = cause.lower()
    why = next((said for found, said in _UNREACHABLE if found in lowered), "")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED and not why:
        why = f"no answer within {timeout:.0f} s" if timeout else "no answer in time"
    message = f"the seat server at {target} cannot be reached"
    return DaemonUnavailable(
        f"{message}: {why}" if why else message, target=target, cause=cause, code=""
    )


def _lost(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
    return LeaseLost(message, code=detail.reason, metadata=dict(detail.metadata))


def _policy(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
    return PolicyRefused(
        message,
        code=detail.reason,
        rule=detail.metadata.get(Meta.POLICY, ""),
        group=detail.metadata.get(Meta.GROUP, ""),
    )


def _admin(message: str, detail: types_pb2.ErrorDetail, target: str) -> SeatError:
    return AdminRefused(message, code=detail.reason, metadata=dict(detail.metadata))


# The daemon's reason -> the library's error. One entry per `contract.Reason`.
DECODERS: dict[str, Decoder] = {
    Reason.INVALID_ARGUMENT: lambda m, d, t: InvalidRequest(m, field=d.metadata[Meta.FIELD]),
    Reason.SEATS_EXHAUSTED: _exhausted,
    Reason.SESSION_NOT_FOUND: _lost,
    Reason.SESSION_RELEASED: _lost,
    Reason.SESSION_EXPIRED: _lost,
    Reason.SESSION_EVICTED: lambda m, d, t: Evicted(m, reason=d.ended.reason, by=d.ended.by),
    Reason.TAKEOVER_TARGET_GONE: _gone,
    Reason.INVALID_LEASE_TOKEN: _lost,
    Reason.STREAM_SUPERSEDED: lambda m, d, t: Superseded(m),
    Reason.TAKEOVER_DENIED: lambda m, d, t: TakeoverDenied(m, policy=d.metadata[Meta.POLICY]),
    Reason.UNAVAILABLE: _unavailable,
    Reason.STORAGE_FAILED: _unavailable,
    Reason.DRAINING: _unavailable,
    Reason.CLOUD_SYNC_FAILED: _admin,
    Reason.STORE_FULL: _busy(StoreFull),
    Reason.RATE_LIMITED: _busy(RateLimited),
    Reason.QUEUE_FULL: _busy(QueueFull),
    Reason.PING_FLOOD: _busy(LimitExceeded),
    Reason.KEEPALIVE_BACKLOG: _busy(LimitExceeded),
    Reason.TOO_MANY_CALLS: _busy(LimitExceeded),
    Reason.LICENCE_EXPIRED: lambda m, d, t: LicenceInvalid(m, code=d.reason),
    Reason.SEATS_NOT_PURCHASED: _admin,
    Reason.PERMISSION_DENIED: _admin,
    Reason.UNAUTHENTICATED: _admin,
    Reason.RECORD_DAMAGED: _admin,
    Reason.NOT_LEADER: lambda m, d, t: NotLeader(
        f"the seat server at {t}: {m}",
        leader=d.metadata.get(Meta.LEADER, ""),
        name=d.metadata.get(Meta.LEADER_NAME, ""),
        admin=d.metadata.get(Meta.LEADER_ADMIN, ""),
        target=t,
        cause=m,
    ),
    Reason.POLICY_MAX: _policy,
    Reason.POLICY_PER_USER: _policy,
    Reason.POLICY_RESERVED: _policy,
    Reason.POLICY_EXCLUDED: _policy,
}


def from_rpc_error(exc: grpc.RpcError, target: str) -> SeatError:
    """Turn a gRPC error from the daemon into the library's typed error."""
    code: grpc.StatusCode = exc.code()
    detail = detail_of(exc)
    message = detail.message or exc.details() or code.name
    decode = DECODERS.get(detail.reason)
    if decode is not None:
        return decode(message, detail, target)
    if detail.reason.startswith(LICENCE_PREFIX):
        return LicenceInvalid(message, code=detail.reason)
    # No reason we know: a newer daemon, or grpc itself (network, deadline), by status code.
    if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED):
        return LeaseLost(message, code=detail.reason)
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidRequest(message)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return unreachable(target, code, message)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ServerBusy(message, retry_after=_seconds(detail), code=detail.reason)
    return SeatError(message, code=detail.reason)
