"""Which seat server to call, when there are several (a seatd cluster), without I/O.

A client is given one target or several (`"a:7117"`, `["a:7117", "b:7117"]` or
`"a:7117,b:7117"`). Only the cluster's leader arbitrates; a standby refuses with NOT_LEADER
and the leader's advertised address. So after a failed call the client goes to that address
at once when it was named, and otherwise to the next target in the list after a backoff
(the daemon may be restarting or electing). An instance naming itself has just been elected
and is loading the table: the client stays and retries it after the backoff. With one
target nothing changes: it is always the one called.
"""

from __future__ import annotations

from collections.abc import Sequence

from seatclient.errors import DaemonUnavailable, NotLeader, SeatError


def parse(targets: str | Sequence[str]) -> tuple[str, ...]:
    """The targets as a tuple of HOST:PORT, from one string (comma-separated) or a list."""
    items = targets.split(",") if isinstance(targets, str) else list(targets)
    found = tuple(t.strip() for t in items if t.strip())
    if not found:
        raise ValueError("give at least one seat server target (HOST:PORT)")
    return found


# With several targets the retries are capped lower: an election takes the cluster's lease
# TTL (seconds), and a standby's refusal is cheap, so no workstation should sleep past the
# new leader's first second.
CLUSTER_RETRY_CAP = 1.0


class Targets:
    def __init__(self, targets: str | Sequence[str]) -> None:
        self.all = parse(targets)
        # The target calls go to now: a listed one, or the leader a standby named.
        self.current = self.all[0]

    @property
    def retry_cap(self) -> float | None:
        """The ceiling of a retry's backoff: lower for a cluster, the default for one server."""
        return CLUSTER_RETRY_CAP if len(self.all) > 1 else None

    def __str__(self) -> str:
        return ",".join(self.all)

    def failed(self, error: SeatError) -> bool:
        """A call to `current` failed with `error`. Move on when the daemon may be elsewhere;
        True when a standby named the leader (call it now, no backoff)."""
        if isinstance(error, NotLeader) and error.leader:
            if error.leader == self.current:
                # Just elected, it loads the table: it serves in a moment, the others never.
                return False
            self.current = error.leader
            return True
        # A leader a standby named is not in the list: when it goes away, back to the list,
        # even a list of one (the standby there may lead now).
        if isinstance(error, DaemonUnavailable) and (
            len(self.all) > 1 or self.current not in self.all
        ):
            self._next()
        return False

    def _next(self) -> None:
        try:
            at = self.all.index(self.current)
        except ValueError:
            # An advertised leader that is not in the list went away: start from the list.
            self.current = self.all[0]
            return
        self.current = self.all[(at + 1) % len(self.all)]
