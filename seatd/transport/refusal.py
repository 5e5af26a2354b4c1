"""What a refusal at capacity tells the workstation about the sessions holding the seats.

A refusal travels in the response trailers, and grpc (C core) refuses received metadata above
8 KiB at random and above 16 KiB always ("Stream removed"): measured here, a 9,000-byte
trailer already failed one call in four. So the list is bounded twice: at most
`MOST_LISTED` sessions, oldest first, and no more than `BUDGET` bytes of them, whatever the
lengths of their names (a worst-case session with every text at its limit in four-byte
characters is about 2 KiB; the budget still holds two of those). `in_use` gives the total,
so a client can say "and N more".

Anyone who can reach the workstation port sees a refusal, so how much it discloses is a
setting (`server.refusal_disclosure`): `count` (no sessions), `dialog` (the default: what the
ERP's "all connections in use" dialog shows: id, user code, name, computer, start, client
version, last seen and whether a stream is attached, so the user can tell a crashed or idle
seat from a working one) or `full` (also the IP address).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

from seatclient.v1 import types_pb2

from seatd.model import Session
from seatd.transport import convert

MOST_LISTED = 50
# Bytes of serialized sessions in one refusal; the rest of the trailers take well under 1 KiB.
BUDGET = 4096


class Disclosure(enum.Enum):
    COUNT = "count"
    DIALOG = "dialog"
    FULL = "full"


def _shown(s: Session, now: datetime, disclosure: Disclosure) -> types_pb2.Session:
    full = convert.session(s, now)
    if disclosure is Disclosure.FULL:
        return full
    return types_pb2.Session(
        id=full.id,
        user_code=full.user_code,
        user_name=full.user_name,
        hostname=full.hostname,
        client_version=full.client_version,
        started_at=full.started_at,
        last_seen_at=full.last_seen_at,
        duration=full.duration,
        attached=full.attached,
    )


def listed(
    sessions: Iterable[Session], now: datetime, disclosure: Disclosure
) -> list[types_pb2.Session]:
    """The oldest sessions, as `disclosure` shows them, that fit the bounds above."""
    if disclosure is Disclosure.COUNT:
        return []
    shown: list[types_pb2.Session] = []
    used = 0
    for s in sorted(sessions, key=lambda s: s.id)[:MOST_LISTED]:
        message = _shown(s, now, disclosure)
        # Tag, length prefix and body, as it sits in the repeated field.
        size = message.ByteSize() + 4
        if used + size > BUDGET:
            break
        shown.append(message)
        used += size
    return shown
