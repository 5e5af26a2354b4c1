"""The seat table's nouns: who asks, sessions, how they end, and the events that change them.

Plain frozen values, shared by the arbiter (which makes them), the store and journal (which
persist them) and the transport (which shows them). No I/O here.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

DEFAULT_EVICT_REASON = "Connection limit exceeded"

# Endings remembered (in memory and in the store, across restarts) so that a late call, or
# a workstation that comes back after days away, learns why its session ended.
ENDINGS_KEPT = 4096
ENDINGS_MAX_AGE = timedelta(days=30)

# The longest text each field may hold, in characters.
TEXT_LIMITS = {
    "user_code": 64,
    "user_name": 128,
    "hostname": 255,
    "client_version": 64,
    "idempotency_key": 128,
    "reason": 256,
    "by": 128,
    # What a local seatctl says its OS user is (POSIX names are at most 32 characters).
    "x-seatd-user": 64,
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_text(
    field_name: str, value: str, *, required: bool = True, limit: int | None = None
) -> str:
    """Return `value` stripped, or raise InvalidArgument naming the field.

    The bound is `limit`, or else the one in TEXT_LIMITS under `field_name`.
    """
    from seatd.errors import InvalidArgument

    text = value.strip()
    if required and not text:
        raise InvalidArgument(field_name, "is required")
    limit = limit if limit is not None else TEXT_LIMITS[field_name]
    if len(text) > limit:
        raise InvalidArgument(field_name, f"is longer than {limit} characters")
    if _CONTROL.search(text):
        raise InvalidArgument(field_name, "contains control characters")
    return text


def check_printable(field_name: str, value: str) -> str:
    """`check_text` (optional field), and nothing unprintable such as a direction override."""
    from seatd.errors import InvalidArgument

    text = check_text(field_name, value, required=False)
    if not text.isprintable():
        raise InvalidArgument(field_name, "contains unprintable characters")
    return text


@dataclass(frozen=True, slots=True)
class Instant:
    """One reading of the clock: monotonic for deadlines, wall for display and the journal."""

    mono: float
    wall: datetime


@dataclass(frozen=True, slots=True)
class Holder:
    """Who asks for a seat: a user at a workstation."""

    user_code: str
    user_name: str
    hostname: str
    ip: str
    client_version: str

    @classmethod
    def stripped(
        cls, *, user_code: str, user_name: str, hostname: str, ip: str, client_version: str
    ) -> Holder:
        """The holder a request names, its text stripped. The text's rules (length, control
        characters, user code required) were checked with the request's other fields, by
        `seatd.transport.validate`, before it reached the service."""
        return cls(
            user_code.strip(), user_name.strip(), hostname.strip(), ip, client_version.strip()
        )


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in client holding a seat."""

    id: int
    holder: Holder
    key: str
    token: str
    started_at: datetime
    last_seen_at: datetime
    # Monotonic instant of the last renewal (grant, attach, ping or restart).
    renewed_at: float
    # Monotonic instant at which the reaper may free the seat.
    expires_at: float
    attached: bool = False
    # Keepalive streams attached so far, and whether the session came back from a restart
    # and has not reattached yet: together they tell a first attach from a reattach.
    streams: int = 0
    restored: bool = False
    # Idle reclaim (in memory only): the monotonic instant the user was last active, as the
    # workstation reports it (None: it reports nothing, and is never reclaimed), and when it
    # was warned and will be evicted unless activity comes first.
    idle_since: float | None = None
    idle_warned_at: float | None = None
    idle_evict_at: float | None = None

    def renewed(self, at: Instant, expires_at: float, idle_since: float | None) -> Session:
        """This session renewed at `at` until `expires_at`, its user last active at
        `idle_since`. Built field by field: `dataclasses.replace` cost three times as much,
        and this runs on every keepalive ping."""
        return Session(
            self.id,
            self.holder,
            self.key,
            self.token,
            self.started_at,
            at.wall,
            at.mono,
            expires_at,
            self.attached,
            self.streams,
            self.restored,
            idle_since,
            self.idle_warned_at,
            self.idle_evict_at,
        )


class EndKind(enum.Enum):
    RELEASED = 1
    EXPIRED = 2
    EVICTED = 3


@dataclass(frozen=True, slots=True)
class Ending:
    """How a session ended: kind, reason, who did it, when (wall) and how long it was silent.

    `by` is who the daemon knows did it; `claimed` is the user an admin's client says it
    runs as, and `by_claimed` marks a `by` that is itself only what a client said (a
    workstation's `user_code@hostname` on a takeover)."""

    session: Session
    kind: EndKind
    reason: str
    by: str
    at: datetime
    silent_for: float = 0.0
    claimed: str = ""
    by_claimed: bool = False

    @property
    def who(self) -> str:
        """Who did it, for the workstation's user: the admin's user name as its client gave it
        when there is one (the journal keeps it apart, as `claimed_user`)."""
        return self.claimed or self.by

    def describe(self) -> str:
        sid = self.session.id
        if self.kind is EndKind.EVICTED:
            return f"session {sid} was disconnected by {self.who}: {self.reason}"
        if self.kind is EndKind.EXPIRED:
            return f"session {sid} expired after {self.silent_for:.0f} s without keepalive"
        return f"session {sid} was released"


@dataclass(frozen=True, slots=True)
class Granted:
    """Event: a seat was granted."""

    session: Session


@dataclass(frozen=True, slots=True)
class Ended:
    """Event: a session ended (released, expired or evicted)."""

    ending: Ending


@dataclass(frozen=True, slots=True)
class LicenceInstalled:
    """Event: a verified licence replaced the one in force (import or sync)."""

    text: str
    serial: str
    seats: int
    source: str
    by: str
    at: datetime
    previous_serial: str = ""
    # The OS user a local seatctl claims to be (not proven).
    claimed: str = ""
    # The book's lineage after this install (JSON), kept so no older licence comes back.
    lineage: str = ""


@dataclass(frozen=True, slots=True)
class LicenceStaged:
    """Event: a licence paid for a later period was kept; it is installed on its start date
    (and dropped when a licence with its serial is installed, or the licence is cleared)."""

    text: str
    serial: str
    valid_from: date
    source: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LicenceTransferred:
    """Event: the cloud said this base id's subscription moved to another base id; the
    licence in force (`serial`) ended then. Installing or clearing a licence ends this."""

    to_base_id: str
    transferred_at: datetime
    serial: str
    by: str
    at: datetime


@dataclass(frozen=True, slots=True)
class LicenceCleared:
    """Event: the local licence was forgotten; the free licence is in force until restored."""

    by: str
    at: datetime
    previous_serial: str = ""
    # The OS user a local seatctl claims to be (not proven).
    claimed: str = ""


@dataclass(frozen=True, slots=True)
class ActiveSeatsChanged:
    """Event: an owner or buyer changed the active seats (at most the purchased ones)."""

    old: int
    new: int
    by: str
    at: datetime
    # The OS user a local seatctl claims to be (not proven).
    claimed: str = ""


@dataclass(frozen=True, slots=True)
class ClockRollback:
    """Event: the wall clock was found behind the last trusted time."""

    wall: datetime
    trusted: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class ClockJumped:
    """Event: the wall clock was found ahead of the time in use (monotonic time says so)."""

    wall: datetime
    trusted: datetime
    at: datetime


@dataclass(frozen=True, slots=True)
class WallSeen:
    """Not journaled: the proven time floor, kept so a restart can spot a set-back clock."""

    at: datetime


@dataclass(frozen=True, slots=True)
class StoreProbe:
    """Not journaled: a write that leaves nothing, so the watchdog knows the store commits."""

    at: datetime


@dataclass(frozen=True, slots=True)
class Reattached:
    """Event: a workstation came back on its session, after a dropped stream or a restart."""

    session: Session
    after_restart: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class JournalPruned:
    """Event: entries up to `up_to_seq` were removed under the retention policy; the hash of
    the last one removed becomes the checkpoint the rest of the chain is verified from."""

    up_to_seq: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Refused:
    """Event: a request for a seat was refused (capacity, or a licence past its grace)."""

    holder: Holder
    reason: str
    cap: int | None
    in_use: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Repeated:
    """Event: `count` more events like `last` from one source, from `since` to `last.at`
    (coalesced by `seatd.repeats`)."""

    last: Refused | Denied | Reattached
    count: int
    since: datetime


@dataclass(frozen=True, slots=True)
class DaemonEvent:
    """Event: the daemon started or stopped."""

    kind: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Restored:
    """Event: the state was replaced by a backup (`seatd restore`, daemon stopped); journaled
    when the daemon next starts, with what is known of the backup."""

    at: datetime
    by: str
    backup: str
    sha256: str
    size: int
    restored_at: datetime
    # The backup's last journal entry: it holds everything up to there (taken at or after).
    backup_seq: int
    backup_at: str
    # Where the state it replaced was kept ("" when there was none).
    replaced: str


@dataclass(frozen=True, slots=True)
class TokenCreated:
    """Event: an admin token was created (only its hash is kept)."""

    name: str
    role: str
    token_hash: str
    by: str
    at: datetime
    # The OS user a local seatctl claims to be (not proven).
    claimed: str = ""


@dataclass(frozen=True, slots=True)
class TokenRevoked:
    name: str
    by: str
    at: datetime
    # The OS user a local seatctl claims to be (not proven).
    claimed: str = ""


@dataclass(frozen=True, slots=True)
class Denied:
    """Event: an admin call was refused for lack of a role."""

    actor: str
    role: str
    rpc: str
    needed: str
    at: datetime


Event = (
    Granted
    | Ended
    | Refused
    | Reattached
    | JournalPruned
    | LicenceInstalled
    | LicenceStaged
    | LicenceTransferred
    | LicenceCleared
    | ActiveSeatsChanged
    | ClockRollback
    | ClockJumped
    | DaemonEvent
    | Restored
    | TokenCreated
    | TokenRevoked
    | Denied
    | Repeated
    | WallSeen
    | StoreProbe
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes an admin call, and the role it holds. `name` is what the daemon can vouch
    for (a certificate, a token, access to the local socket); `claimed` is a user name the
    client gave that nothing proves (journaled as `claimed_user`)."""

    name: str
    role: str
    claimed: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    """The arbiter's answer to a grant: the session, and the events to persist (none on a retry)."""

    session: Session
    events: tuple[Event, ...] = field(default=())
