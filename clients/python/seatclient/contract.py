"""The error contract between seatd and its clients, defined once.

The daemon (`seatd.errors`, `seatd.transport.status`) and this library both import these
names, so a reason string or metadata key cannot drift between the side that encodes a
refusal and the side that decodes it. It lives in the client package because a workstation
installs the library without the daemon, while the daemon already depends on the library
for its generated code.

A refusal carries, in its trailers: `grpc-status-details-bin` (a `google.rpc.Status` with
`google.rpc.ErrorInfo` {reason, domain `DOMAIN`, metadata}, our `seatd.v1.ErrorDetail`
without the session list, and `google.rpc.RetryInfo` when a retry makes sense), and
`DETAIL_KEY` (the full `seatd.v1.ErrorDetail`), so a client needs only protobuf to read it.
"""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "seatd.v1"
# Trailer holding the serialized seatd.v1.ErrorDetail of a refusal.
DETAIL_KEY: Final = "seatd-error-bin"
# Initial metadata of an Acquire that joined the wait queue: the position it joined at.
QUEUE_POSITION_KEY: Final = "seatd-queue-position"


class Reason:
    """`ErrorDetail.reason` / `ErrorInfo.reason`: stable machine codes, for translation."""

    INVALID_ARGUMENT: Final = "INVALID_ARGUMENT"
    SEATS_EXHAUSTED: Final = "SEATS_EXHAUSTED"
    SESSION_NOT_FOUND: Final = "SESSION_NOT_FOUND"
    # A session that existed and ended: SESSION_ + how (seatd.v1.EndKind without its prefix).
    SESSION_RELEASED: Final = "SESSION_RELEASED"
    SESSION_EXPIRED: Final = "SESSION_EXPIRED"
    SESSION_EVICTED: Final = "SESSION_EVICTED"
    INVALID_LEASE_TOKEN: Final = "INVALID_LEASE_TOKEN"
    # A second attach of the same session replaced this keepalive stream.
    STREAM_SUPERSEDED: Final = "STREAM_SUPERSEDED"
    TAKEOVER_DENIED: Final = "TAKEOVER_DENIED"
    # The session a takeover named is no longer live (it ended while the user chose it).
    TAKEOVER_TARGET_GONE: Final = "TAKEOVER_TARGET_GONE"
    UNAVAILABLE: Final = "UNAVAILABLE"
    STORAGE_FAILED: Final = "STORAGE_FAILED"
    STORE_FULL: Final = "STORE_FULL"
    DRAINING: Final = "DRAINING"
    RATE_LIMITED: Final = "RATE_LIMITED"
    # Bounds on what one caller may make the daemon hold (RESOURCE_EXHAUSTED).
    QUEUE_FULL: Final = "QUEUE_FULL"
    PING_FLOOD: Final = "PING_FLOOD"
    KEEPALIVE_BACKLOG: Final = "KEEPALIVE_BACKLOG"
    TOO_MANY_CALLS: Final = "TOO_MANY_CALLS"
    # The licence in force allows no new connection (expired past its grace, transferred).
    LICENCE_EXPIRED: Final = "LICENCE_EXPIRED"
    SEATS_NOT_PURCHASED: Final = "SEATS_NOT_PURCHASED"
    PERMISSION_DENIED: Final = "PERMISSION_DENIED"
    CLOUD_SYNC_FAILED: Final = "CLOUD_SYNC_FAILED"
    UNAUTHENTICATED: Final = "UNAUTHENTICATED"
    RECORD_DAMAGED: Final = "RECORD_DAMAGED"
    # Cluster mode: this instance is a standby (or a leader past its margin); the leader's
    # advertised address is in the metadata under `Meta.LEADER` (empty while none is known).
    NOT_LEADER: Final = "NOT_LEADER"
    # The site's seat policy refused the seat; metadata `policy` names the rule and `group`
    # the group it concerns. A group over its max, a user at max_per_user, or the free seats
    # reserved for another group: a seat may come free (wait); an excluded group: never.
    POLICY_MAX: Final = "POLICY_MAX"
    POLICY_PER_USER: Final = "POLICY_PER_USER"
    POLICY_RESERVED: Final = "POLICY_RESERVED"
    POLICY_EXCLUDED: Final = "POLICY_EXCLUDED"


# Every licence refusal's reason starts so (LICENCE_MALFORMED, LICENCE_BAD_SIGNATURE, ...).
LICENCE_PREFIX: Final = "LICENCE_"


class LicenceReason:
    """Why a licence file was not installed (INVALID_ARGUMENT; the one in force stays).

    A client acts on `LICENCE_PREFIX` alone; these name the cause for translation."""

    # Not a licence text, or damaged (copy the whole file again).
    MALFORMED: Final = "LICENCE_MALFORMED"
    BAD_SIGNATURE: Final = "LICENCE_BAD_SIGNATURE"
    # Signed with a key this daemon does not trust (update seatd or add the vendor's key).
    UNKNOWN_KEY: Final = "LICENCE_UNKNOWN_KEY"
    WRONG_BASE: Final = "LICENCE_WRONG_BASE"
    BAD_DATES: Final = "LICENCE_BAD_DATES"
    NOT_YET_VALID: Final = "LICENCE_NOT_YET_VALID"
    # Kept for later only when it starts after today.
    ALREADY_STARTED: Final = "LICENCE_ALREADY_STARTED"
    # Older than (or the same as) the licence in force.
    SUPERSEDED: Final = "LICENCE_SUPERSEDED"
# Session endings: the prefix of SESSION_RELEASED / _EXPIRED / _EVICTED.
SESSION_ENDED_PREFIX: Final = "SESSION_"


class Meta:
    """`ErrorDetail.metadata` / `ErrorInfo.metadata` keys."""

    # INVALID_ARGUMENT: the proto field name of the request field at fault.
    FIELD: Final = "field"
    SESSION_ID: Final = "session_id"
    # A session's ending: who ended it, and the reason they gave.
    BY: Final = "by"
    ENDED_REASON: Final = "ended_reason"
    CAP: Final = "cap"
    IN_USE: Final = "in_use"
    # TAKEOVER_DENIED: the takeover policy; POLICY_*: the rule (exclude, max, reserve,
    # max_per_user).
    POLICY: Final = "policy"
    # POLICY_*: the group the rule belongs to ("" for max_per_user outside any group).
    GROUP: Final = "group"
    NEEDED_ROLE: Final = "needed_role"
    # NOT_LEADER: the leader's advertised HOST:PORT for workstations ("" while none is known)
    # and its instance name.
    LEADER: Final = "leader"
    LEADER_NAME: Final = "leader_name"
    # NOT_LEADER: the leader's remote admin listener, HOST:PORT ("" when it has none), where
    # seatctl --remote follows an admin call a standby refused.
    LEADER_ADMIN: Final = "leader_admin"
