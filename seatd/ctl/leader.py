"""seatctl in cluster mode: an admin call a standby refuses goes to the leader.

Only the leader serves admin calls; a standby refuses each with NOT_LEADER, naming the
leader and its remote admin listener (`Meta.LEADER_ADMIN`). Over `--remote A,B,...` seatctl
makes the refused call again there with the same credentials (the CA, token or client
certificate are the site's, and tokens live in the shared store), and gives way to the
next target when one cannot be reached. On the local socket it does not: the socket's
credential (being on this host) means nothing on another one, so it says where to go.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
from seatclient.contract import Meta, Reason
from seatclient.errors import detail_of
from seatclient.v1 import admin_pb2, types_pb2

# seatctl's exit code when it asked a standby and could not follow it to the leader.
EXIT_NOT_LEADER = 3

_METHODS = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods_by_name
# The calls that change nothing: one that ran out of time may be asked of another target.
READS = frozenset(
    {
        "ListSessions",
        "GetPolicy",
        "CheckPolicy",
        "GetLicence",
        "LicenceHistory",
        "ReadJournal",
        "WatchJournal",
        "VerifyJournal",
        "ListTokens",
    }
)


def next_target(
    targets: Sequence[str],
    tried: Sequence[str],
    code: grpc.StatusCode,
    detail: types_pb2.ErrorDetail,
    reads: bool = False,
) -> str | None:
    """Where a call refused with (`code`, `detail`) goes next, after `tried`; None: nowhere
    (the answer stands). A standby naming the leader's admin listener: there. A standby that
    cannot name one, or a target that did not answer at all (for a call that only `reads`,
    in time either: a frozen host): the next target not tried."""
    unanswered = code is grpc.StatusCode.UNAVAILABLE or (
        reads and code is grpc.StatusCode.DEADLINE_EXCEEDED
    )
    if detail.reason == Reason.NOT_LEADER:
        admin = detail.metadata.get(Meta.LEADER_ADMIN, "")
        if admin and admin not in tried:
            return admin
    elif detail.reason or not unanswered:
        # The daemon answered, or may have acted (a deadline): never ask another.
        return None
    return next((t for t in targets if t not in tried), None)


def standby_message(detail: types_pb2.ErrorDetail, where: str) -> str:
    """What seatctl says when the instance at `where` is not the leader and it cannot follow."""
    name = detail.metadata.get(Meta.LEADER_NAME, "")
    address = detail.metadata.get(Meta.LEADER, "")
    admin = detail.metadata.get(Meta.LEADER_ADMIN, "")
    if not address:
        return (
            f"the seatd instance at {where} is a standby and no instance leads right now (an "
            "election is under way, or etcd has lost its quorum): retry in a moment; "
            "`seatctl cluster status` shows the instances"
        )
    go = (
        f"run seatctl on {name}, or `seatctl --remote {admin} ...` (its remote admin listener)"
        if admin
        else f"run seatctl on {name} (it has no remote admin listener: [admin] listen)"
    )
    leader = f"the cluster's leader is {name} at {address}"
    return f"the seatd instance at {where} is a standby; {leader}: {go}"


class Following:
    """An AdminService stub over several remote targets that follows NOT_LEADER.

    `open` makes a stub for a target (same credentials for every one); `target` is the one
    the last call went to, for the messages."""

    def __init__(
        self, targets: Sequence[str], open: Callable[[str], tuple[grpc.Channel, Any]]
    ) -> None:
        self.targets = list(targets)
        self.target = self.targets[0]
        self._open = open
        self._channel: grpc.Channel | None = None
        self._stub: Any = None

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel, self._stub = None, None

    def _go(self, target: str) -> None:
        self.close()
        self.target = target

    def _current(self) -> Any:
        if self._stub is None:
            self._channel, self._stub = self._open(self.target)
        return self._stub

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in _METHODS:
            raise AttributeError(name)
        streaming = _METHODS[name].server_streaming

        def call(request: Any, **kwargs: Any) -> Any:
            tried: list[str] = []
            while True:
                try:
                    answer = getattr(self._current(), name)(request, **kwargs)
                    return _started(answer) if streaming else answer
                except grpc.RpcError as exc:
                    tried.append(self.target)
                    where = next_target(
                        self.targets, tried, exc.code(), detail_of(exc), name in READS
                    )
                    if where is None:
                        raise
                    self._go(where)

        return call


def _started(stream: Iterator[Any]) -> Iterator[Any]:
    """A server stream whose first answer has arrived: a standby's refusal comes as the
    stream's error, before any answer, and must be seen while it can still be followed."""
    try:
        first = next(stream)
    except StopIteration:
        return iter(())
    return itertools.chain([first], stream)
