"""One leader per site, elected through etcd: an etcd lease and a leader key attached to it.

This is etcd's own election recipe (`clientv3/concurrency.Election`) reduced to one key: a
candidate grants itself a lease and creates `/seatd/<site>/leader` (`EtcdConfig.leader_key`)
in a transaction that succeeds only if the key does not exist (`CreateRevision == 0`),
attached to that lease. The key's create revision is the leader's fence: every store write
compares it, so once the lease ends (the key goes with it) or another instance leads (a new
create revision), a write from this instance fails in etcd and changes nothing. Standbys
watch the key and campaign the moment it is deleted.

The leader keeps its lease alive from a thread of its own, one keepalive at a time on a
stream of its own (so each answer belongs to a known send time), and asks `LeaderLease`
before arbitrating (`seatd.cluster.lease`): granting pauses at the margin, and leadership
ends only when etcd says the lease ended or has given no proof for long, so an etcd member
lost, even etcd's raft leader, is ridden out on the same lease. Each renewal also reads the
leader key: a renewal counts only while the key is still this term's (its create revision,
this lease), and a key deleted or replaced by hand makes the leader step down at once
instead of when the lease would end. The thread is there because the event loop is not
free to renew on time: a thousand workstations reattaching at a takeover keep it busy for
longer than the margin, and a renewal queued behind them would depose a healthy leader.
Streams carry etcd's `hasleader` metadata, so a member cut off from its quorum ends them
instead of leaving them silent.

A leader key no seatd instance wrote (put by hand without a lease, or holding something
else) blocks every election for as long as it stays: seatd reports it (`foreign`, the
`cluster.leader_key_foreign` log line, `seatctl cluster status`) with the command that
clears it, names no leader from it, and never deletes it itself: whoever wrote it decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import grpc
import structlog
from aetcd.rpc import kv_pb2, rpc_pb2, rpc_pb2_grpc

from seatd.clock import Clock
from seatd.cluster.lease import LeaderLease, LeaseTiming
from seatd.errors import NotLeader
from seatd.store.etcd import Fence

log = structlog.get_logger("seatd")

# etcd ends a stream whose member has lost its own leader only when asked to.
REQUIRE_LEADER = (("hasleader", "true"),)
# Seconds a unary etcd call may take before this instance treats etcd as unreachable.
CALL_TIMEOUT = 2.0
# Seconds between attempts while etcd cannot be reached at all.
RETRY = 0.2


@dataclass(frozen=True, slots=True)
class Instance:
    """What a leader advertises in the leader key (and every instance in its heartbeat)."""

    name: str
    # HOST:PORT workstations connect to.
    address: str
    # HOST:PORT of the remote admin listener ("" when only the local socket serves).
    admin: str = ""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Instance | None:
        try:
            data = json.loads(raw)
            return cls(str(data["name"]), str(data["address"]), str(data.get("admin", "")))
        except (ValueError, KeyError, TypeError):
            return None


def foreign(key: kv_pb2.KeyValue) -> str:
    """Why the leader key `key` is not a seatd leader's, "" when it is one: a seatd leader's
    key is on a lease (it ends with its leader) and holds an `Instance`."""
    if key.lease == 0:
        return "the leader key has no lease (not written by seatd): it never ends by itself"
    if Instance.decode(key.value) is None:
        return "the leader key does not hold a seatd leader record (not written by seatd)"
    return ""


class Election:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        renewals: grpc.Channel | None = None,
        key: bytes,
        site: str,
        me: Instance,
        ttl: int,
        clock: Clock,
    ) -> None:
        self.kv = rpc_pb2_grpc.KVStub(channel)
        self.leases = rpc_pb2_grpc.LeaseStub(channel)
        self.watches = rpc_pb2_grpc.WatchStub(channel)
        # Blocking: the renewing thread's (see the module docstring).
        self._renewals = rpc_pb2_grpc.LeaseStub(renewals) if renewals is not None else None
        self._renewal_kv = rpc_pb2_grpc.KVStub(renewals) if renewals is not None else None
        self._renewing: grpc.Call | None = None
        self.site = site
        self.key = key
        self.me = me
        self.ttl = ttl
        self.clock = clock
        self.lease = LeaderLease(LeaseTiming(float(ttl)))
        self.lease_id = 0
        # The leader as last seen in etcd (this instance while it leads); None: no leader.
        self.leader: Instance | None = None
        self.fence: Fence | None = None
        # Why the last leadership ended ("" while leading or never led).
        self.why = ""
        # Why no instance can be elected: a leader key no seatd instance wrote ("" if none).
        self.blocked = ""

    # -- what the service asks -----------------------------------------------------------------

    @property
    def leading(self) -> bool:
        return self.fence is not None and self.lease.granting(self.clock.monotonic())

    def check(self) -> None:
        """Raise NotLeader unless this instance may arbitrate right now."""
        if not self.leading:
            raise self.refusal()

    def refusal(self) -> NotLeader:
        """What a call is told while this instance does not arbitrate."""
        if self.leading:
            # Elected, its standby listeners still answering while it loads the table:
            # workstations retry here (naming itself keeps them off the other targets).
            why = " yet (just elected: loading the seat table)"
            return NotLeader(self.me.address, self.me.name, why, admin=self.me.admin)
        leader = self.leader if self.leader != self.me else None
        why = f" ({self.why})" if self.why else ""
        if self.blocked:
            why = f" (elections are blocked: {self.blocked}; an administrator must delete it)"
        if self.fence is not None:
            why = (
                " (etcd has not confirmed its lease in time: not granting until it does, "
                "or until another instance leads)"
            )
        if leader is None:
            return NotLeader(why=why)
        return NotLeader(leader.address, leader.name, why, admin=leader.admin)

    # -- campaign ----------------------------------------------------------------------------

    async def campaign(self) -> Fence:
        """Return once this instance leads: the fence its writes must carry."""
        while True:
            try:
                fence = await self._try_once()
            except (grpc.RpcError, TimeoutError) as exc:
                log.warning("cluster.etcd_unreachable", error=_describe(exc), retry=RETRY)
                await asyncio.sleep(RETRY)
                continue
            if fence is not None:
                return fence

    async def _try_once(self) -> Fence | None:
        """One attempt: lead, or watch the current leader until its key goes (None)."""
        sent = self.clock.monotonic()
        granted = await self.leases.LeaseGrant(
            rpc_pb2.LeaseGrantRequest(TTL=self.ttl), timeout=CALL_TIMEOUT
        )
        if granted.error:
            raise TimeoutError(granted.error)
        lease_id = granted.ID
        txn = rpc_pb2.TxnRequest(
            compare=[
                rpc_pb2.Compare(
                    key=self.key,
                    target=rpc_pb2.Compare.CREATE,
                    result=rpc_pb2.Compare.EQUAL,
                    create_revision=0,
                )
            ],
            success=[
                rpc_pb2.RequestOp(
                    request_put=rpc_pb2.PutRequest(
                        key=self.key, value=self.me.encode(), lease=lease_id
                    )
                )
            ],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=self.key))],
        )
        try:
            answer = await self.kv.Txn(txn, timeout=CALL_TIMEOUT)
        except BaseException:
            await self._revoke(lease_id)
            raise
        if answer.succeeded:
            self.lease_id = lease_id
            self.lease.renewed(sent, float(granted.TTL))
            self.fence = Fence(self.key, answer.header.revision)
            self.leader, self.why, self.blocked = self.me, "", ""
            log.info(
                "cluster.elected",
                name=self.me.name,
                revision=answer.header.revision,
                lease_ttl=granted.TTL,
            )
            return self.fence
        await self._revoke(lease_id)
        kvs = answer.responses[0].response_range.kvs
        if not kvs:
            return None  # deleted between the compare and the read: campaign again
        self._saw(kvs[0])
        await self._until_deleted(answer.header.revision)
        return None

    def _saw(self, key: kv_pb2.KeyValue) -> None:
        blocked = foreign(key)
        if blocked and blocked != self.blocked:
            name = key.key.decode(errors="replace")
            log.error(
                "cluster.leader_key_foreign",
                key=name,
                reason=blocked,
                action=(
                    f"no instance can lead until it is deleted: check who wrote it, then "
                    f"`etcdctl del {name}` (seatd never deletes a key it did not write)"
                ),
            )
        self.blocked = blocked
        leader = None if blocked else Instance.decode(key.value)
        if leader != self.leader:
            log.info(
                "cluster.leader_seen",
                leader=leader.name if leader else "?",
                address=leader.address if leader else "",
            )
        self.leader = leader

    async def _until_deleted(self, revision: int) -> None:
        """Watch the leader key from `revision` on; return when it is deleted or the watch
        ends (the caller reads the key again)."""
        call = self.watches.Watch(metadata=REQUIRE_LEADER)
        try:
            await call.write(
                rpc_pb2.WatchRequest(
                    create_request=rpc_pb2.WatchCreateRequest(
                        key=self.key, start_revision=revision + 1
                    )
                )
            )
            while True:
                answer = await call.read()
                if answer is grpc.aio.EOF or answer.canceled:
                    return
                for event in answer.events:
                    if event.type == kv_pb2.Event.DELETE:
                        log.info("cluster.leader_gone", leader=self._leader_name())
                        self.leader, self.blocked = None, ""
                        return
                    self._saw(event.kv)
        finally:
            call.cancel()

    def _leader_name(self) -> str:
        return self.leader.name if self.leader else "?"

    # -- holding -------------------------------------------------------------------------------

    async def hold(self) -> str:
        """Keep the lease alive while leading; return why leadership ended. Granting stops
        at the margin; leadership ends when etcd says the lease or the key is gone, or has
        given no proof for the lease's patience past its end."""
        if self._renewals is None:
            raise AssertionError("an Election holding a lease needs its `renewals` channel")
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[str] = loop.create_future()
        stop = threading.Event()

        def report(why: str | BaseException) -> None:
            if ended.done():
                return
            if isinstance(why, BaseException):
                ended.set_exception(why)
            else:
                ended.set_result(why)

        def renew() -> None:
            try:
                why: str | BaseException = self._renew(stop, self.lease_id)
            except Exception as exc:
                why = exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(report, why)

        threading.Thread(target=renew, name="etcd-lease", daemon=True).start()
        try:
            return self._lost(await ended)
        finally:
            stop.set()
            renewing = self._renewing
            if renewing is not None:
                renewing.cancel()

    def _renew(self, stop: threading.Event, lease_id: int) -> str:
        """The renewing thread: keepalives every renewal interval (every retry interval
        while unproven) until etcd says the lease or the key is gone, or it has given no
        proof for the lease's patience (why), or `stop`. Granting pauses and resumes with
        the proof (`seatd.cluster.lease`); this thread only says so."""
        lease = self.lease
        paused_at: float | None = None
        while not stop.is_set():
            sent = self.clock.monotonic()
            if not lease.keeping(sent):
                return (
                    f"etcd has not confirmed its lease for {lease.timing.patience:g} s past "
                    "its end (etcd unreachable, or without quorum)"
                )
            if paused_at is None and not lease.granting(sent):
                paused_at = lease.granting_until()
                log.warning(
                    "cluster.granting_paused",
                    name=self.me.name,
                    reason="etcd has not confirmed its lease in time",
                    action="asking etcd again; granting resumes when it confirms the lease",
                )
            # Up to the proof's end while there is one; past it (paused) a retry interval: an
            # etcd that has just elected its raft leader may take longer than a LAN round
            # trip to answer, and an answer however late proves from its send time.
            budget = max(
                min(lease.timing.renew_interval, lease.proven_until - sent),
                lease.timing.retry_interval,
            )
            try:
                ttl = self._keepalive(lease_id, budget)
            except grpc.RpcError as exc:
                if stop.is_set():
                    break
                log.warning("cluster.renew_failed", error=_describe(exc))
                ttl = None
            if stop.is_set():
                break
            proved = False
            if ttl is not None:
                if ttl <= 0:
                    lease.lost()
                    return "etcd says its lease has ended"
                try:
                    lost = self._key_verdict(self._read_key(budget))
                except grpc.RpcError as exc:
                    # The renewal proves nothing until the key is seen: no more time granted.
                    log.warning("cluster.renew_failed", error=_describe(exc))
                    lost = None
                if lost:
                    lease.lost()
                    return lost
                if lost is not None and not stop.is_set():
                    lease.renewed(sent, float(ttl))
                    proved = True
            if proved and paused_at is not None:
                log.info(
                    "cluster.granting_resumed",
                    name=self.me.name,
                    paused_for=round(max(0.0, self.clock.monotonic() - paused_at), 3),
                )
                paused_at = None
            next_at = lease.next_renewal(sent, proved)
            if proved:
                next_at = min(next_at, lease.granting_until())
            stop.wait(max(0.0, next_at - self.clock.monotonic()))
        return ""

    def _read_key(self, budget: float) -> rpc_pb2.RangeResponse:
        if self._renewal_kv is None:
            raise AssertionError("an Election holding a lease needs its `renewals` channel")
        found: rpc_pb2.RangeResponse = self._renewal_kv.Range(
            rpc_pb2.RangeRequest(key=self.key), timeout=max(budget, 0.05)
        )
        return found

    async def key_lost(self) -> str:
        """Why the leader key is no longer this term's ("" while it is: created at the
        fence's revision, attached to this lease). A key deleted by hand (or replaced, or put
        again without the lease, so the lease's end would no longer free it) would otherwise
        go unnoticed while the lease renews: standbys would campaign, and this instance would
        go on answering pings (its grants fail in etcd, fenced)."""
        if self.fence is None:
            return "it no longer leads"
        found = await self.kv.Range(rpc_pb2.RangeRequest(key=self.key), timeout=CALL_TIMEOUT)
        return self._key_verdict(found)

    def _key_verdict(self, found: rpc_pb2.RangeResponse) -> str:
        """`key_lost` on a read of the leader key."""
        fence = self.fence
        if fence is None:
            return "it no longer leads"
        if not found.kvs:
            return "its leader key is gone from etcd (deleted, or its lease has ended)"
        key = found.kvs[0]
        if key.create_revision != fence.revision or key.lease != self.lease_id:
            return "its leader key was replaced in etcd"
        return ""

    def _keepalive(self, lease_id: int, budget: float) -> int | None:
        """One keepalive on a stream of its own (a late answer cannot be taken for the next
        one's): the TTL etcd answered, None when the stream ended without an answer."""
        requests: Iterator[rpc_pb2.LeaseKeepAliveRequest] = iter(
            [rpc_pb2.LeaseKeepAliveRequest(ID=lease_id)]
        )
        assert self._renewals is not None  # checked by hold
        call = self._renewals.LeaseKeepAlive(requests, timeout=budget, metadata=REQUIRE_LEADER)
        self._renewing = call
        try:
            for answer in call:
                return int(answer.TTL)
            return None
        finally:
            self._renewing = None
            call.cancel()

    def _lost(self, why: str) -> str:
        log.warning("cluster.stepping_down", name=self.me.name, reason=why)
        self.lease.lost()
        self.fence = None
        self.why = why
        if self.leader == self.me:
            self.leader = None
        return why

    async def resign(self) -> None:
        """Give leadership up now (revoke the lease: the key goes, a standby takes over at
        once instead of after the TTL)."""
        self.lease.lost()
        self.fence = None
        if self.leader == self.me:
            self.leader = None
        if self.lease_id:
            await self._revoke(self.lease_id)
            self.lease_id = 0

    async def _revoke(self, lease_id: int) -> None:
        with contextlib.suppress(grpc.RpcError, TimeoutError):
            await self.leases.LeaseRevoke(
                rpc_pb2.LeaseRevokeRequest(ID=lease_id), timeout=CALL_TIMEOUT
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else ""
        return f"{code.name if code else 'error'}: {details}"
    return type(exc).__name__
