"""Whether the leader a standby names still answers on its port.

Until the leader's etcd lease runs out (the lease TTL), a standby still sees the leader key
of a leader that died, and its refusal names that leader: every workstation then goes to
the dead address, is refused, comes back after a backoff, and is sent there again, for
seconds, and may be in the middle of that round trip when the new leader serves. So the
standby keeps a connection to the leader it names, from the moment it learns who leads
(`follow`: workstations call a standby only once their leader has failed them, too late to
learn then that it ever answered); once that connection has worked and the leader's port
then refuses it (the process is gone), the standby holds each call instead, while the
leader key expires and an election is held (`seatd.cluster.handover` bounds it), and the
workstation is answered by the new leader, or with the leader then named.

A leader this standby never reached (a firewall between the servers, a TLS port) is never
taken for dead: its calls are refused at once, naming it, as before. A leader machine that
vanished without refusing connections reads as alive until TCP says otherwise: the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from seatd.cluster.election import Instance


class LeaderProbe:
    def __init__(self) -> None:
        self._address = ""
        self._channel: grpc.aio.Channel | None = None
        # The connection to `_address` has been ready at least once.
        self._seen = False
        self._closing: set[asyncio.Future[None]] = set()

    async def follow(self, leader: Callable[[], Instance | None], every: float) -> None:
        """Keep connected to the leader `leader()` names (None: none, or this instance)."""
        while True:
            self.tick(leader())
            await asyncio.sleep(every)

    def tick(self, leader: Instance | None) -> None:
        """Point the connection at `leader` and have it (re)connect."""
        self.gone(leader)

    @property
    def reached(self) -> bool:
        """Whether the leader last asked about has answered this standby."""
        return self._seen

    def gone(self, leader: Instance | None) -> bool:
        """True when `leader` answered this standby before and its port now refuses. With
        no leader known (its key has gone, an election is under way): whether the last one
        known is gone."""
        if leader is not None and leader.address and leader.address != self._address:
            self._close()
            self._address = leader.address
            self._channel = grpc.aio.insecure_channel(leader.address)
            self._seen = False
        if self._channel is None:
            return False
        state = self._channel.get_state(try_to_connect=True)
        if state is grpc.ChannelConnectivity.READY:
            self._seen = True
            return False
        return self._seen and state is grpc.ChannelConnectivity.TRANSIENT_FAILURE

    def _close(self) -> None:
        """Close the channel to a former leader, in the background (it carries no call)."""
        channel, self._channel = self._channel, None
        if channel is not None:
            closing = asyncio.ensure_future(channel.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        self._close()
        if self._closing:
            await asyncio.wait(self._closing)
